"""Scenario files are validated on load: every problem at once, each with the file, the line and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfr.sitl.scenario import Scenario, ScenarioError, load_scenario, scenario_files
from tests.scenarios.conftest import ROOT, SHIPPED

AREA = ROOT / "missions" / "areas" / "chula-vista.yaml"

GOOD = f"""\
name: t
description: a test scenario
area: {AREA}
drones:
  - id: cv-1
timeline:
  - at_s: 0
    incident: {{ref: shot, lat: 32.645, lon: -117.08}}
expect:
  - on_scene_within: {{incident: shot, seconds: 120}}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "scenario.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ScenarioError) as e:
        load_scenario(write(tmp_path, text))
    return [str(p) for p in e.value.problems]


def test_good_file_loads(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, GOOD))
    assert s.drone_ids == ["cv-1"] and s.incident_refs() == ["shot"] and s.report_count() == 1


def test_every_shipped_scenario_loads() -> None:
    files = scenario_files([SHIPPED])
    assert len(files) >= 12
    names = [load_scenario(f).name for f in files]
    assert len(set(names)) == len(names), "scenario names name the report files: they must be unique"


def test_typo_names_line_and_suggests(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("expect:", "expcet:"))
    assert any(
        "scenario.yaml:10: expcet: unknown key 'expcet' (did you mean 'expect'?)" in p for p in found
    ), found
    assert any("missing required key 'expect'" in p for p in found), found


def test_bad_value_names_field_and_line(tmp_path: Path) -> None:
    (p,) = problems(tmp_path, GOOD.replace("lat: 32.645", "lat: 132.645"))
    assert ":8: timeline[0].incident.lat:" in p and "less than or equal to 90" in p


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("seconds: 120", "seconds: -1").replace("speed", "x") + "speed: 500\n"
    found = problems(tmp_path, text)
    assert any("expect[0].on_scene_within.seconds" in p for p in found)
    assert any(":11: speed:" in p for p in found), found


def test_unknown_references_are_errors(tmp_path: Path) -> None:
    text = GOOD.replace("incident: shot, seconds", "incident: shto, seconds")
    text += "  - landed_at_dock: {drone: cv-9}\n  - route_bends: {incident: shot, zone: nowhere}\n"
    found = problems(tmp_path, text)
    assert any(":10: expect[0].on_scene_within.incident: no incident with ref 'shto'" in p for p in found), (
        found
    )
    assert any(":11: expect[1].landed_at_dock.drone: drone 'cv-9' does not take part" in p for p in found), (
        found
    )
    assert any(
        "expect[2].route_bends.zone: no zone 'nowhere'" in p and "sharp-cv-helipad" in p for p in found
    )


def test_trigger_must_refer_to_an_earlier_incident(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  - at_s: 0\n",
        "  - after: {incident: shot, state: en_route}\n"
        "    fault: {type: link, drone: cv-1, up: false}\n"
        "  - at_s: 0\n",
    )
    (p,) = problems(tmp_path, text)
    assert ":7: timeline[0].after.incident: no incident with ref 'shot' earlier in the timeline" in p


def test_step_does_exactly_one_thing(tmp_path: Path) -> None:
    text = GOOD.replace("    incident: {ref", "    restart: {}\n    incident: {ref")
    (p,) = problems(tmp_path, text)
    assert "timeline[0]" in p and "exactly one thing" in p and "incident, restart" in p


def test_fault_needs_its_arguments(tmp_path: Path) -> None:
    text = GOOD.replace("expect:", "  - fault: {type: battery, drone: cv-1}\nexpect:")
    (p,) = problems(tmp_path, text)
    assert "timeline[1].fault" in p and "a battery fault needs pct" in p


def test_policy_overrides_are_checked(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD + "policy_overrides: {loiter: 5, buffer_m: -3}\n")
    assert any("policy_overrides.loiter: unknown policy field 'loiter'" in p for p in found), found


def test_area_that_does_not_load(tmp_path: Path) -> None:
    (p,) = problems(tmp_path, GOOD.replace(str(AREA), "nowhere.yaml"))
    assert ":3: area: area 'nowhere.yaml' does not load" in p and "not found" in p


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "file is empty"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
        ("name: a\nname: b\n", "duplicate key 'name'"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, needle: str) -> None:
    assert any(needle in p for p in problems(tmp_path, text))


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=5),
    max_leaves=20,
)
keys = st.sampled_from(
    ["name", "description", "area", "timeline", "expect", "drones", "speed", "wind", "policy_overrides"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.dictionaries(keys, values, max_size=6))
def test_loader_never_raises_anything_else(tmp_path: Path, base: dict[str, object]) -> None:
    doc = {**yaml.safe_load(GOOD), **base}
    p = tmp_path / "fuzz.yaml"
    p.write_text(yaml.safe_dump(doc))
    try:
        assert isinstance(load_scenario(p), Scenario)
    except ScenarioError as e:
        assert e.problems and all(str(pr).startswith(str(p)) for pr in e.problems)
