"""The evidence file format (issue 12): whatever instant the writing process dies at, the file on disk
plays to its end; recording work runs on the recorder's own threads."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from dfr.video import recording
from dfr.video.recording import EvidenceRecorder, _Writer


def frames(n: int, seed: int = 0) -> list[av.VideoFrame]:
    rng = np.random.default_rng(seed)
    return [
        av.VideoFrame.from_ndarray(rng.integers(0, 255, (120, 160, 3), np.uint8), format="rgb24").reformat(
            format="yuv420p"
        )
        for _ in range(n)
    ]


def decoded(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_every_state_the_file_passes_through_plays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshot the file after every write the recorder makes (a SIGKILL can only land between writes of
    a regular file): each snapshot decodes to its end, and only the last fragment's frames are missing."""
    snapshots: list[bytes] = []
    real_write = os.write

    def spying_write(fd: int, data: Any) -> int:
        n = real_write(fd, data)
        snapshots.append((tmp_path / "m.mp4").read_bytes())
        return n

    monkeypatch.setattr(recording.os, "write", spying_write)
    fps = 10
    writer = _Writer(tmp_path / "m.mp4", fps, {"mission_id": "m"})
    clip = frames(45)
    for i, frame in enumerate(clip):
        writer.write(frame, i / fps)
    writer.close()
    assert len(snapshots) >= 5  # header, then a fragment per second, then the rest at close
    counts = []
    for n, data in enumerate(snapshots):
        path = tmp_path / f"snap-{n}.mp4"
        path.write_bytes(data)
        counts.append(decoded(path))  # raises on an unplayable file
    assert counts == sorted(counts) and counts[-1] == len(clip) == writer.frames
    kept_before_close = counts[-2]
    assert len(clip) - kept_before_close <= 2 * fps  # at most the open fragment (1 s) lost, here < 2 s


async def test_recording_work_does_not_wait_for_the_default_thread_pool(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    release = threading.Event()
    workers = (os.cpu_count() or 1) + 4  # asyncio's default pool size is min(32, cpu + 4)
    blocked = [loop.run_in_executor(None, release.wait) for _ in range(workers * 2)]
    recorder = EvidenceRecorder(None, None, None, tmp_path)  # type: ignore[arg-type]
    try:
        name = await asyncio.wait_for(recorder._run(lambda: threading.current_thread().name), 5)
        assert name.startswith("dfr-evidence")
    finally:
        release.set()
        await asyncio.gather(*blocked)
        recorder._pool.shutdown()


async def test_recover_audits_what_a_killed_service_left(tmp_path: Path) -> None:
    import hashlib
    import json
    import uuid

    from dfr.store import Store
    from dfr.video.recording import ACTION_FAILED, ACTION_RECORDED, MARKER_SUFFIX, evidence_parts

    evidence = tmp_path / "evidence"
    evidence.mkdir()
    kept, empty = str(uuid.uuid4()), str(uuid.uuid4())
    writer = _Writer(evidence / f"{kept}.mp4", 10, {"mission_id": kept})
    for i, frame in enumerate(frames(25)):
        writer.write(frame, i / 10)
    # "killed": never closed; its fragments so far are on disk, its marker is left
    writer.file._pending.clear()
    (evidence / f"{empty}.mp4").write_bytes(b"")
    (evidence / f"{empty}.mp4{MARKER_SUFFIX}").write_text(json.dumps({"mission_id": empty}))

    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}") as store:
        recorder = EvidenceRecorder(None, None, store, evidence)  # type: ignore[arg-type]
        assert await recorder.recover() == 1
        assert await recorder.recover() == 0  # markers gone: nothing twice
        recorder._pool.shutdown()
        parts = await evidence_parts(store, kept, evidence)
        assert len(parts) == 1 and parts[0].partial
        data = parts[0].path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == parts[0].sha256 and len(data) == parts[0].bytes
        assert decoded(parts[0].path) == parts[0].frames >= 10  # two whole seconds were on disk
        assert [e.action for e in await store.audit(kept)] == [ACTION_RECORDED]
        assert [e.action for e in await store.audit(empty)] == [ACTION_FAILED]
    assert not list(evidence.glob(f"*{MARKER_SUFFIX}")) and not (evidence / f"{empty}.mp4").exists()
