"""dfr.dispatch.policy: the default policy says what it should, decisions explain themselves, and every
mistake in a policy file is a PolicyError that points at the field and line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dfr.dispatch.policy import Decision, Policy, PolicyError, Rule, decide, load_policy

DEFAULT = Path(__file__).resolve().parents[2] / "missions" / "policies" / "default.yaml"


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy(DEFAULT)


def rule(name: str, kinds: list[str], action: str = "auto_launch", **kw: Any) -> Rule:
    return Rule.model_validate({"name": name, "kinds": kinds, "action": action, **kw})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[tuple[str, str, int | None]]:
    with pytest.raises(PolicyError) as exc:
        load_policy(write(tmp_path, text))
    return [(p.loc, p.message, p.line) for p in exc.value.problems]


# ---------------------------------------------------------------------------------------------------------
# The default policy


@pytest.mark.parametrize(
    ("kind", "priority", "action", "rule_name"),
    [
        ("gunshot", 1, "launch", "gunshot"),
        ("gunshot", 5, "launch", "gunshot"),
        ("911", 1, "launch", "911-urgent"),
        ("911", 2, "launch", "911-urgent"),
        ("911", 3, "await_approval", "911-routine"),
        ("911", 5, "await_approval", "911-routine"),
        ("alpr", 1, "await_approval", "alpr"),
        ("manual", 5, "launch", "manual"),
        ("other", 1, "await_approval", "other"),
    ],
)
def test_default_policy(default: Policy, kind: str, priority: int, action: str, rule_name: str) -> None:
    d = decide(default, kind=kind, priority=priority, wind_m_s=3.0)
    assert (d.action, d.rule) == (action, rule_name)
    if action == "await_approval":
        assert (d.approval_timeout_s, d.on_timeout) == (120.0, "decline")
        assert "120 s" in d.reason and "declined" in d.reason
    else:
        assert (d.approval_timeout_s, d.on_timeout) == (None, None)


def test_default_policy_numbers(default: Policy) -> None:
    assert default.coverage_radius_m == 5000
    assert default.altitude_m is None  # the area's default altitude, which knows its zones' floors
    assert default.model_dump() == Policy(rules=default.rules).model_dump()  # the file spells out defaults


# ---------------------------------------------------------------------------------------------------------
# decide


def test_first_matching_rule_wins() -> None:
    policy = Policy(
        rules=[
            rule("urgent", ["911"], max_priority=1),
            rule("any", ["*"], "require_approval", approval_timeout_s=30, on_timeout="launch"),
        ]
    )
    assert decide(policy, kind="911", priority=1, wind_m_s=0).rule == "urgent"
    d = decide(policy, kind="911", priority=2, wind_m_s=0)
    assert d == Decision(
        "await_approval",
        "Waiting for operator approval: policy rule 'any' requires approval for 911 incidents at "
        "priority 2; if nobody answers within 30 s, the drone launches anyway.",
        "any",
        30.0,
        "launch",
    )
    assert decide(policy, kind="something-new", priority=5, wind_m_s=0).rule == "any"


def test_no_rule_refuses() -> None:
    policy = Policy(rules=[rule("gunshot", ["gunshot"], max_priority=2)])
    d = decide(policy, kind="gunshot", priority=3, wind_m_s=0)
    assert d.action == "refuse" and d.rule is None
    assert "no policy rule for kind gunshot priority 3" in d.reason


def test_never_refuses() -> None:
    policy = Policy(rules=[rule("no-alpr", ["alpr"], "never")])
    d = decide(policy, kind="alpr", priority=1, wind_m_s=0)
    assert (d.action, d.rule, d.approval_timeout_s, d.on_timeout) == ("refuse", "no-alpr", None, None)
    assert "'no-alpr'" in d.reason and "never" in d.reason


def test_never_is_reported_as_never_even_in_high_wind() -> None:
    policy = Policy(rules=[rule("no-alpr", ["alpr"], "never")])
    assert "never" in decide(policy, kind="alpr", priority=1, wind_m_s=30).reason


def test_wind(default: Policy) -> None:
    assert decide(default, kind="gunshot", priority=1, wind_m_s=12.0).action == "launch"  # at the limit
    d = decide(default, kind="gunshot", priority=1, wind_m_s=14.2)
    assert d.action == "refuse" and d.rule == "gunshot"
    assert "14.2 m/s" in d.reason and "12.0 m/s" in d.reason
    # Just above the limit must not read "12.0 m/s is above the 12.0 m/s limit".
    assert (
        "12.03 m/s is above the 12.00 m/s"
        in decide(default, kind="gunshot", priority=1, wind_m_s=12.03).reason
    )


@pytest.mark.parametrize("wind", [math.nan, math.inf, -1.0])
def test_invalid_wind_refuses(default: Policy, wind: float) -> None:
    d = decide(default, kind="gunshot", priority=1, wind_m_s=wind)
    assert d.action == "refuse" and "cannot be checked" in d.reason


@pytest.mark.parametrize("priority", [0, 6, True, 2.0])
def test_bad_priority_is_a_programming_error(default: Policy, priority: Any) -> None:
    with pytest.raises(ValueError, match="priority"):
        decide(default, kind="gunshot", priority=priority, wind_m_s=0)


def test_reasons_are_sentences(default: Policy) -> None:
    for kind in ("gunshot", "911", "alpr", "manual", "other", "unknown"):
        for wind in (0.0, 20.0):
            reason = decide(default, kind=kind, priority=3, wind_m_s=wind).reason
            assert reason[0].isupper() and reason.endswith(".") and "\n" not in reason


# ---------------------------------------------------------------------------------------------------------
# Model checks (also when a Policy is built in code)


def test_duplicate_names_and_dead_rules_are_refused_in_code() -> None:
    with pytest.raises(ValidationError, match="duplicate rule name 'a'"):
        Policy(rules=[rule("a", ["gunshot"]), rule("a", ["911"])])
    with pytest.raises(ValidationError, match="'late' can never apply"):
        Policy(rules=[rule("all", ["*"]), rule("late", ["gunshot"])])
    with pytest.raises(ValidationError, match="'p2' can never apply"):
        Policy(rules=[rule("p3", ["911"], max_priority=3), rule("p2", ["911"], max_priority=2)])
    # A catch-all after specific rules still applies to the rest.
    Policy(rules=[rule("gunshot", ["gunshot"]), rule("rest", ["*"])])


def test_unquoted_911_is_the_911_kind(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "rules:\n  - {name: a, kinds: [911], action: auto_launch}\n"))
    assert policy.rules[0].kinds == ["911"]


# ---------------------------------------------------------------------------------------------------------
# load_policy errors

GOOD = """\
rules:
  - name: gunshot
    kinds: [gunshot]
    action: auto_launch
  - name: calls
    kinds: ["911"]
    action: require_approval
"""


def test_good_file_loads(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, GOOD))
    assert [r.name for r in policy.rules] == ["gunshot", "calls"]


def test_unknown_key_points_at_line_and_suggests(tmp_path: Path) -> None:
    text = GOOD + "coverage_radius: 3000\n"
    assert problems(tmp_path, text) == [
        ("coverage_radius", "unknown key 'coverage_radius' (did you mean 'coverage_radius_m'?)", 8)
    ]


def test_unknown_rule_key(tmp_path: Path) -> None:
    text = GOOD.replace("    action: require_approval", "    action: require_approval\n    timeout: 30")
    [(loc, msg, line)] = problems(tmp_path, text)
    assert (loc, line) == ("rules[1].timeout", 8)
    assert "unknown key 'timeout'" in msg


ACTION = "    action: auto_launch"


@pytest.mark.parametrize(
    ("edit", "loc", "line", "fragment"),
    [
        (("auto_launch", "launch"), "rules[0].action", 4, "auto_launch"),
        (("[gunshot]", "[gunshots]"), "rules[0].kinds", 3, "unknown incident kind 'gunshots'"),
        (("[gunshot]", "['*', gunshot]"), "rules[0].kinds", 3, "list it alone"),
        (("[gunshot]", "[]"), "rules[0].kinds", 3, "at least 1"),
        ((ACTION, ACTION + "\n    max_priority: '2'"), "rules[0].max_priority", 5, "valid integer"),
        ((ACTION, ACTION + "\n    max_priority: 0"), "rules[0].max_priority", 5, "greater than or equal"),
        (("name: calls", "name: gunshot"), "rules[1].name", 5, "duplicate rule name 'gunshot'"),
    ],
)
def test_field_errors(tmp_path: Path, edit: tuple[str, str], loc: str, line: int, fragment: str) -> None:
    found = problems(tmp_path, GOOD.replace(*edit))
    assert [(p[0], p[2]) for p in found] == [(loc, line)]
    assert fragment in found[0][1]


def test_bad_top_level_values(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD + "min_battery_pct: 140\nallow_standoff: 'yes'\nmax_wind_m_s: .nan\n")
    assert sorted((loc, line) for loc, _, line in found) == [
        ("allow_standoff", 9),
        ("max_wind_m_s", 10),
        ("min_battery_pct", 8),
    ]


def test_dead_rule_points_at_its_name(tmp_path: Path) -> None:
    text = GOOD + "  - name: late\n    kinds: [gunshot]\n    action: never\n"
    [(loc, msg, line)] = problems(tmp_path, text)
    assert (loc, line) == ("rules[2].name", 8)
    assert "can never apply" in msg


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "file is empty"),
        ("rules: []\n", "at least 1"),
        ("coverage_radius_m: 100\n", "missing required key 'rules'"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("rules: [\n", "not valid YAML"),
        (GOOD + "rules: []\n", "duplicate key 'rules'"),
    ],
)
def test_whole_file_errors(tmp_path: Path, text: str, fragment: str) -> None:
    found = problems(tmp_path, text)
    assert any(fragment in msg for _, msg, _ in found), found


def test_error_message_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("[gunshot]", "[gunfire]"))
    with pytest.raises(PolicyError) as exc:
        load_policy(path)
    assert exc.value.path == str(path)
    assert f"{path}:3: rules[0].kinds: unknown incident kind 'gunfire'" in str(exc.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "nope.yaml")


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
keys = st.sampled_from(["rules", "name", "kinds", "action", "max_priority", "coverage_radius_m", "x"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.dictionaries(keys, yaml_values | st.lists(st.dictionaries(keys, yaml_values), max_size=3)))
def test_nothing_but_policy_error_escapes(tmp_path: Path, doc: dict[str, Any]) -> None:
    path = write(tmp_path, yaml.safe_dump(doc))
    try:
        load_policy(path)
    except PolicyError as e:
        assert e.problems
