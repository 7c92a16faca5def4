"""A scenario written to fail does fail, through the CLI, with a readable reason and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dfr.cli import main
from tests.scenarios.conftest import DATA

pytestmark = pytest.mark.integration


def test_impossible_time_to_scene_fails_with_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["sitl", "run", str(DATA / "must_fail.yaml"), "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "must-fail" in out and "FAIL" in out
    assert "on_scene_within: shot: on scene after" in out and "later than 5 s" in out, out

    report = json.loads((tmp_path / "must-fail.json").read_text())
    assert report["verdict"] == "fail"
    by_kind = {c["kind"]: c for c in report["checks"]}
    assert not by_kind["on_scene_within"]["ok"]
    # only the impossible check failed: the others held, so the failure is the check, not the run
    assert by_kind["mission_state"]["ok"] and by_kind["never_in_no_fly_zone"]["ok"], report["checks"]
    assert report["time_to_scene_s"] > 5
    assert (tmp_path / "must-fail.png").stat().st_size > 0
