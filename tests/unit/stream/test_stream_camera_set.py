"""Cameras changed while ``ingest --sources`` runs (:mod:`stream.app.camera_set`), without Kafka:
a recording producer stands in for it (tests/integration/test_ingest_reload.py runs the same
against the real broker, through the command and SIGHUP)."""

import threading
import time

import numpy as np

from stream.app.camera_set import CameraSet
from stream.app.ingest import IngestOptions, OpenedSource, frame_batches, load_cameras
from stream.app.metrics import IngestMetrics
from stream.core.wire import decode_frame_batch
from stream.dev.testing import FakeFuture


class RecordingProducer:
    def __init__(self):
        self.values, self.lock = [], threading.Lock()

    def send(self, topic, *, key, value, headers=None):
        with self.lock:
            self.values.append(value)
        return FakeFuture(None)

    def flush(self, timeout=None):
        pass

    def seqs(self, camera):
        out = []
        for b in map(decode_frame_batch, list(self.values)):
            if b.camera_id == camera:
                out.extend(range(b.first_seq, b.first_seq + len(b.frames)))
        return out


def test_a_stop_ends_the_reading_and_the_frames_read_are_still_sent():
    read = []

    def frames():
        for i in range(100):
            read.append(i)
            yield np.full((24, 32, 3), i, np.uint8), int(i * 4e7)

    opts = IngestOptions(source="x", camera_id="cam", frames_per_batch=4, pacing="fast")
    out = list(frame_batches(OpenedSource(frames(), 25.0, False), opts, stop=lambda: len(read) >= 6))
    assert [(b.first_seq, len(b.frames)) for b in out] == [(0, 4), (4, 2)]   # the short last batch is sent


def write_cameras(path, folder, *entries):
    path.write_text("cameras:\n" + "".join(f"  - {{camera_id: {cam}, source: '{folder}'{extra}}}\n"
                                           for cam, extra in entries))


def test_a_reload_starts_stops_and_restarts_only_the_cameras_that_changed(tmp_path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((24, 32, 3), i * 40, np.uint8))
    path = tmp_path / "cameras.yaml"
    defaults = dict(frames_per_batch=4, loop=True, folder_fps=100.0, max_side=32)
    write_cameras(path, folder, ("a", ""), ("b", ""), ("d", ""))
    producer, metrics = RecordingProducer(), IngestMetrics()
    cams = CameraSet(producer, metrics=metrics)
    for options in load_cameras(path, defaults):
        cams.start(options)
    a_thread = cams._running["a"].thread
    time.sleep(0.5)
    write_cameras(path, folder, ("a", ""), ("c", ""), ("d", ", options: {frames_per_batch: 2}"))
    outcome = cams.reload(lambda: load_cameras(path, defaults))
    assert (outcome.added, outcome.removed, outcome.restarted, outcome.unchanged) == (("c",), ("b",), ("d",), 1)
    assert cams._running["a"].thread is a_thread and a_thread.is_alive()
    b = next(r for r in cams.results if r.camera_id == "b")
    assert b.state == "removed" and producer.seqs("b") == list(range(b.stats.frames)) and b.stats.frames > 0
    path.write_text("cameras:\n  - {camera_id: a, source: x, options: {jpeg_quality: 0}}\n")
    refused = cams.reload(lambda: load_cameras(path, defaults))
    assert "jpeg_quality must be 1..100, got 0" in refused.refused and sorted(cams.camera_ids) == ["a", "c", "d"]
    time.sleep(0.3)
    cams.stop_all()
    cams.join(10)
    assert not cams.alive()
    a = next(r for r in cams.results if r.camera_id == "a")
    assert producer.seqs("a") == list(range(a.stats.frames))   # untouched: one run, numbered without a gap
    d_old, d_new = [r for r in cams.results if r.camera_id == "d"]
    assert d_old.state == "restarted" and producer.seqs("d") == list(range(d_old.stats.frames)) + list(
        range(d_new.stats.frames))
    value = metrics.registry.get_sample_value
    assert [value("soccerkd_ingest_camera_changes_total", {"change": c}) for c in ("added", "removed", "restarted")] \
        == [1, 1, 1]
    assert value("soccerkd_ingest_reloads_total", {"outcome": "refused"}) == 1
    assert value("soccerkd_ingest_reloads_total", {"outcome": "applied"}) == 1
    assert value("soccerkd_ingest_cameras") == 3 and value("soccerkd_ingest_up", {"camera": "b"}) is None


def test_a_refused_reload_is_one_log_line_naming_the_problem(tmp_path, caplog):
    path = tmp_path / "cameras.yaml"
    cams = CameraSet(RecordingProducer())
    for text, fragment in [("cameras: [", "not valid YAML"),
                           ("cameras:\n  - {camera_id: a, source: x}\n  - {camera_id: a, source: y}", "appears twice")]:
        path.write_text(text)
        caplog.clear()
        outcome = cams.reload(lambda: load_cameras(path, {}))
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and "cameras reload refused" in lines[0] and fragment in lines[0], lines
        assert "\n" not in lines[0] and outcome.refused and not outcome.added
