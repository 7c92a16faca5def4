"""A UDP relay in front of a vehicle, to cut its MAVLink link both ways as a radio outage would.

PX4 SITL instance *i* sends its API link to 127.0.0.1:``14540 + i`` and answers whoever sends to it.
The relay listens there in PX4's place, forwards every datagram to the controller's port (``client_port``)
and forwards the controller's datagrams back to the vehicle's address (learnt from its first datagram).
While the link is down, both directions are dropped and counted. This is also how the reference captures
in ``../shared/reference/px4-sitl`` cut the link.

Only loopback addresses are used.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


@dataclass
class RelayCounters:
    to_client: int = 0
    to_vehicle: int = 0
    dropped: int = 0


class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay, from_vehicle: bool) -> None:
        self.relay = relay
        self.from_vehicle = from_vehicle

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay._received(data, addr, self.from_vehicle)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable while nobody listens
        return None


class UdpRelay:
    """Relays one vehicle's MAVLink between `vehicle_port` (where the vehicle sends) and `client_port`."""

    def __init__(self, vehicle_port: int, client_port: int) -> None:
        self.vehicle_port = vehicle_port
        self.client_port = client_port
        self.up = True
        self.counters = RelayCounters()
        self._vehicle_addr: tuple[str, int] | None = None
        self._vehicle_side: asyncio.DatagramTransport | None = None
        self._client_side: asyncio.DatagramTransport | None = None
        self._dropped = asyncio.Event()  # set at each dropped datagram (see `wait_dropped`)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._vehicle_side, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self, from_vehicle=True), local_addr=(LOOPBACK, self.vehicle_port)
        )
        self._client_side, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self, from_vehicle=False), local_addr=(LOOPBACK, 0)
        )

    def close(self) -> None:
        for side in (self._vehicle_side, self._client_side):
            if side is not None:
                side.close()

    async def wait_dropped(self, count: int) -> None:
        """Until at least `count` datagrams have been dropped in all (for tests and diagnostics)."""
        while self.counters.dropped < count:
            self._dropped.clear()
            await self._dropped.wait()

    def _received(self, data: bytes, addr: tuple[str, int], from_vehicle: bool) -> None:
        if from_vehicle:
            self._vehicle_addr = addr
        if not self.up:
            self.counters.dropped += 1
            self._dropped.set()
            return
        if from_vehicle and self._client_side is not None:
            self._client_side.sendto(data, (LOOPBACK, self.client_port))
            self.counters.to_client += 1
        elif not from_vehicle and self._vehicle_side is not None and self._vehicle_addr is not None:
            self._vehicle_side.sendto(data, self._vehicle_addr)
            self.counters.to_vehicle += 1
