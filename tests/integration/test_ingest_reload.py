"""``soccerkd ingest --sources`` changed while it runs, against the real broker: the cameras file
is edited and the process gets SIGHUP."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from stream.core.wire import decode_frame_batch
from stream.kafka.events import iter_records

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


def write_video(path: Path, n: int, seed: int) -> Path:
    import cv2
    import numpy as np

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for i in range(n):
        out.write(np.full((48, 64, 3), (i * 7 + seed * 50) % 255, np.uint8))
    out.release()
    return path


def wait_for(log: Path, text: str, count: int = 1, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        got = log.read_text()
        if got.count(text) >= count:
            return got
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{got[-3000:]}"
        time.sleep(0.1)


def test_cameras_added_removed_and_changed_by_sighup_the_others_lose_no_frame(kafka_broker, tmp_path):
    topic = f"frames-reload-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, partitions=1)
    video = write_video(tmp_path / "clip.avi", 50, seed=1)
    cameras = tmp_path / "cameras.yaml"

    def edit(*entries: str) -> None:
        cameras.write_text("cameras:\n" + "".join(f"  - {{camera_id: {e}, source: '{video}'}}\n"
                                                  if ":" not in e else f"  - {e}\n" for e in entries))

    edit("cam-a", "cam-b", "{camera_id: cam-d, source: '%s', options: {frames_per_batch: 4}}" % video)
    log = tmp_path / "ingest.log"
    proc = subprocess.Popen([sys.executable, "-m", "stream.cli", "ingest", "--sources", str(cameras), "--topic", topic,
                             "--loop", "--frames-per-batch", "8", "--max-side", "64", "--no-progress",
                             "--bootstrap", kafka_broker.bootstrap], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=open(log, "w"), text=True)
    try:
        sending: set[str] = set()
        for rec in iter_records(kafka_broker.bootstrap, topic, timeout_s=40, should_stop=lambda: len(sending) == 3):
            sending.add(decode_frame_batch(rec.value).camera_id)
        assert sending == {"cam-a", "cam-b", "cam-d"}, log.read_text()[-3000:]   # every camera is sending
        edit("cam-a", "cam-c", "{camera_id: cam-d, source: '%s', options: {frames_per_batch: 2}}" % video)
        proc.send_signal(signal.SIGHUP)
        wait_for(log, "cameras reloaded: added ['cam-c'], removed ['cam-b'], restarted ['cam-d'], 1 unchanged")
        time.sleep(1.0)
        cameras.write_text("cameras:\n  - {camera_id: cam-a, source: x}\n  - {camera_id: cam-a, source: y}\n")
        proc.send_signal(signal.SIGHUP)
        text = wait_for(log, "cameras reload refused")
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    refused = [line for line in text.splitlines() if "cameras reload refused" in line]
    assert len(refused) == 1 and "the 3 running camera(s) are kept" in refused[0] and "appears twice" in refused[0]
    runs: dict[str, list[tuple[str, int]]] = {}
    for line in out.splitlines():   # "cam-b: removed: 120 frames in 15 batches, ..."
        cam, state, rest = line.split(": ", 2)
        runs.setdefault(cam, []).append((state, int(rest.split()[0])))
    assert runs["cam-b"][0][0] == "removed" and runs["cam-d"][0][0] == "restarted", out
    assert runs["cam-a"][0][0] == runs["cam-c"][0][0] == runs["cam-d"][1][0] == "done", out
    seqs: dict[str, list[int]] = {}
    sizes: dict[str, list[int]] = {}
    for rec in iter_records(kafka_broker.bootstrap, topic, timeout_s=20, idle_s=2):
        b = decode_frame_batch(rec.value)
        seqs.setdefault(b.camera_id, []).extend(range(b.first_seq, b.first_seq + len(b.frames)))
        sizes.setdefault(b.camera_id, []).append(len(b.frames))
    # the untouched camera: one run numbered without a gap, every frame it read on the topic
    assert seqs["cam-a"] == list(range(runs["cam-a"][0][1])) and len(seqs["cam-a"]) >= 40
    # the removed one: every frame it read, the last (maybe short) batch included
    assert seqs["cam-b"] == list(range(runs["cam-b"][0][1])) and runs["cam-b"][0][1] > 0
    assert seqs["cam-c"] == list(range(runs["cam-c"][0][1])) and runs["cam-c"][0][1] > 0
    (old, n_old), (_, n_new) = runs["cam-d"]
    assert seqs["cam-d"] == list(range(n_old)) + list(range(n_new)) and n_new > 0   # restarted: numbered again
    assert sizes["cam-d"][-1] <= 2 and set(sizes["cam-d"][:-1]) >= {2, 4} and max(sizes["cam-d"]) == 4
    print(f"reload: frames sent cam-a {len(seqs['cam-a'])} (contiguous), cam-b {len(seqs['cam-b'])} "
          f"(removed, all on the topic), cam-c {len(seqs['cam-c'])}, cam-d {n_old} + {n_new} (restarted)")
