"""A throw-away mosquitto broker for integration tests: loopback only, anonymous, persistent in a tmp dir.

Persistence is on so that a test can stop and restart the broker and find the persistent sessions (and
the reports queued for them) still there, as in production. Readiness is established by completing an
MQTT CONNECT/CONNACK exchange, not by sleeping: a listening socket alone does not prove the broker
answers yet.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Self

__all__ = ["Mosquitto", "find_mosquitto", "free_port"]

_CONNECT = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x0a\x00\x00"  # MQTT 3.1.1, clean session, empty client id
_CONNACK_OK = b"\x20\x02\x00\x00"
_DISCONNECT = b"\xe0\x00"


def find_mosquitto() -> str | None:
    """Debian installs the broker in /usr/sbin, which is not on a normal user's PATH."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Mosquitto:
    """One broker process; `start`, `stop` and `restart` (same port, same persistence file)."""

    def __init__(self, binary: str, workdir: Path, port: int | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.config = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {workdir}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if os.geteuid() == 0:
            # Run as root, mosquitto switches to the 'mosquitto' user, which cannot write to pytest's
            # private tmp dir; staying root is harmless for a loopback test broker.
            lines.append("user root")
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout_s: float = 10.0) -> None:
        if self.running:
            raise RuntimeError("mosquitto is already running")
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(self.config)], stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, so that mosquitto saves its persistence file, as a service manager would."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited during startup:\n{self.log()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                    sock.sendall(_CONNECT)
                    answer = b""
                    while len(answer) < len(_CONNACK_OK):
                        chunk = sock.recv(len(_CONNACK_OK) - len(answer))
                        if not chunk:
                            raise ConnectionError("closed before CONNACK")
                        answer += chunk
                    if answer != _CONNACK_OK:
                        raise ConnectionError(f"unexpected CONNACK {answer!r}")
                    sock.sendall(_DISCONNECT)
                    return
            except OSError as exc:
                last = exc
                time.sleep(0.02)  # between connection attempts only; readiness is the CONNACK
        self.stop()
        raise RuntimeError(f"mosquitto not ready after {timeout_s} s ({last}):\n{self.log()[-2000:]}")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
