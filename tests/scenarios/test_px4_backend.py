"""The px4 backend against real PX4 SITL (SIH). PX4 cannot be installed on CI machines: without
PX4_SITL_BIN (the built build/px4_sitl_default/bin/px4) these tests skip and say so."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from dfr.sitl.cli import comparison_problems, comparison_table
from dfr.sitl.px4 import NO_WIND, Px4Backend, parse_attach, px4_cannot_run
from dfr.sitl.relay import UdpRelay
from dfr.sitl.runner import RunOptions, ScenarioResult, run_scenario
from dfr.sitl.scenario import load_scenario
from sim.harness import free_udp_base_port
from tests.scenarios.conftest import SHIPPED

PX4_BIN = os.environ.get("PX4_SITL_BIN")
needs_px4 = pytest.mark.skipif(
    not PX4_BIN,
    reason="PX4 SITL not available: set PX4_SITL_BIN to a built PX4-Autopilot build/px4_sitl_default/bin/px4 "
    "(see README, 'Against real PX4 SITL') to run the scenarios against real PX4",
)


def test_attach_urls_must_be_consecutive_ports() -> None:
    assert parse_attach(["udp://:14540", "udp://:14541"]) == 14540
    assert parse_attach(["udpin://127.0.0.1:14600"]) == 14600
    with pytest.raises(ValueError, match="consecutive"):
        parse_attach(["udp://:14540", "udp://:14542"])
    with pytest.raises(ValueError, match="expected udp"):
        parse_attach(["tcp://x"])


def test_instance_command_follows_px4_conventions(tmp_path: Path) -> None:
    scenario = load_scenario(SHIPPED / "two-incidents-two-drones.yaml")
    backend = Px4Backend(scenario, 20.0, tmp_path, binary="/opt/px4/build/px4_sitl_default/bin/px4")
    args, env, cwd = backend.command(1)
    assert args[:4] == ["/opt/px4/build/px4_sitl_default/bin/px4", "-i", "1", "-d"]
    dock = scenario.area.dock(scenario.area.drone("cv-3").dock)  # the scenario's second drone
    assert float(env["PX4_HOME_LAT"]) == pytest.approx(dock.lat) and float(
        env["PX4_HOME_LON"]
    ) == pytest.approx(dock.lon)
    assert env["PX4_SIM_MODEL"] == "sihsim_quadx" and env["PX4_SIM_SPEED_FACTOR"] == "20"
    assert cwd != backend.command(0)[2]  # one working directory per instance
    assert backend.base_port == 14540


@needs_px4
@pytest.mark.integration
@pytest.mark.parametrize("name", ["single-gunshot", "airport-route-bends", "approval-approved"])
def test_scenario_passes_on_real_px4(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(SHIPPED / f"{name}.yaml")
    result = asyncio.run(
        run_scenario(scenario, RunOptions(backend="px4", px4_bin=PX4_BIN, speed=5.0, report_dir=tmp_path))
    )
    assert result.verdict == "pass", "\n".join(result.failures)


def test_only_what_px4_sih_cannot_express_is_skipped_with_the_reason() -> None:
    def reason(name: str, attached: bool = False) -> str | None:
        return px4_cannot_run(load_scenario(SHIPPED / f"{name}.yaml"), attached)

    for name in ("link-loss-failsafe", "gps-loss", "low-battery-return", "single-gunshot"):
        assert reason(name) is None, name  # relay, SIH's GPS and battery parameters express these
    assert reason("strong-wind") == NO_WIND
    assert reason("wind-over-limit") is None  # over the policy's limit: nothing flies in that wind
    assert reason("link-loss-failsafe", attached=True) is not None
    result = asyncio.run(
        run_scenario(load_scenario(SHIPPED / "strong-wind.yaml"), RunOptions(backend="px4", px4_bin="/x/px4"))
    )
    assert result.verdict == "skipped" and "no wind model" in (result.error or "")


@needs_px4
@pytest.mark.integration
@pytest.mark.parametrize(
    "name", ["link-loss-failsafe", "gps-loss", "low-battery-return", "two-incidents-two-drones"]
)
def test_fault_and_fleet_scenarios_pass_on_real_px4(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(SHIPPED / f"{name}.yaml")
    result = asyncio.run(
        run_scenario(scenario, RunOptions(backend="px4", px4_bin=PX4_BIN, speed=5.0, report_dir=tmp_path))
    )
    assert result.verdict == "pass", "\n".join(result.failures)


async def test_relay_forwards_both_ways_and_cuts_both_ways() -> None:
    loop = asyncio.get_running_loop()
    got: dict[str, asyncio.Queue[bytes]] = {"client": asyncio.Queue(), "vehicle": asyncio.Queue()}
    senders: dict[str, tuple[str, int]] = {}

    class Rx(asyncio.DatagramProtocol):
        def __init__(self, name: str) -> None:
            self.name = name

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            senders[self.name] = addr
            got[self.name].put_nowait(data)

    base = free_udp_base_port(2)
    client, _ = await loop.create_datagram_endpoint(lambda: Rx("client"), local_addr=("127.0.0.1", base))
    vehicle, _ = await loop.create_datagram_endpoint(lambda: Rx("vehicle"), local_addr=("127.0.0.1", 0))
    relay = UdpRelay(base + 1, base)
    await relay.start()
    try:
        vehicle.sendto(b"hb", ("127.0.0.1", base + 1))  # the vehicle talks first, as PX4 does
        assert await asyncio.wait_for(got["client"].get(), 5) == b"hb"
        client.sendto(b"cmd", senders["client"])  # the controller answers whoever sent (the relay)
        assert await asyncio.wait_for(got["vehicle"].get(), 5) == b"cmd"
        relay.up = False
        vehicle.sendto(b"lost-up", ("127.0.0.1", base + 1))
        client.sendto(b"lost-down", senders["client"])
        await asyncio.wait_for(relay.wait_dropped(2), 5)
        relay.up = True
        vehicle.sendto(b"back", ("127.0.0.1", base + 1))
        assert await asyncio.wait_for(got["client"].get(), 5) == b"back"  # "lost-up" never arrived
        assert got["vehicle"].empty() and relay.counters.to_client == 2
    finally:
        relay.close()
        client.close()
        vehicle.close()


def test_comparison_flags_different_verdicts_and_ratios_outside_the_band() -> None:
    def res(name: str, verdict: str, tts: float | None) -> ScenarioResult:
        return ScenarioResult(name, name, verdict, time_to_scene_s=tts)

    pairs = [
        (res("a", "pass", 90.0), res("a", "pass", 94.0)),
        (res("b", "pass", 90.0), res("b", "fail", 94.0)),
        (res("c", "pass", 90.0), res("c", "pass", 120.0)),
        (res("d", "pass", None), res("d", "pass", None)),
        (res("e", "pass", 90.0), ScenarioResult("e", "e", "skipped", error="PX4 SIH has no wind model")),
    ]
    table = comparison_table(pairs, 5.0)
    assert "| a | pass | 90 s | pass | 94 s | 1.04 |  |" in table
    assert "verdict pass on builtin, fail on px4" in table
    assert "ratio 1.33 outside" in table
    assert "2 of 5 scenarios agree" in table and "1 cannot run on PX4 SIH" in table
    assert "PX4 SIH has no wind model" in table
    assert not comparison_problems(*pairs[0]) and comparison_problems(*pairs[2])


@needs_px4
@pytest.mark.integration
def test_make_safe_on_real_px4(tmp_path: Path) -> None:
    """The same safety actions against real PX4 SIH: airborne -> RTL, armed on the ground -> disarm."""
    from dfr.dispatch.safety import SafeAction, make_safe
    from dfr.fleet.fleet import Fleet, default_links

    scenario = load_scenario(SHIPPED / "two-incidents-two-drones.yaml")

    async def run() -> None:
        async with Px4Backend(scenario, 5.0, tmp_path, binary=PX4_BIN) as px4:
            ids = list(scenario.drone_ids)
            fleet = Fleet(default_links(ids, base_port=px4.base_port))
            await fleet.start()
            try:
                flying, grounded = [await fleet.wait_ready(i, 60) for i in ids]
                await flying.arm_and_takeoff(15.0, time_scale=5.0)
                await flying.wait_for(lambda s: (s.rel_alt_m or 0) > 10, 60)
                await grounded.action.arm()
                await grounded.wait_for(lambda s: s.armed, 20)
                assert (await make_safe(flying, pilot_holds=False))[0] is SafeAction.RETURNED
                await flying.wait_for(lambda s: s.flight_mode == "RETURN_TO_LAUNCH", 20)
                assert (await make_safe(grounded, pilot_holds=False))[0] is SafeAction.DISARMED
                await grounded.wait_for(lambda s: not s.armed, 20)
                await flying.wait_for(lambda s: not s.armed and not s.in_air, 120)
            finally:
                await fleet.stop()

    asyncio.run(run())
