"""The pipeline core with fakes: batching, preprocessing once, commit points, crash replay, DLQ path."""

import pytest

from stream.core import resume
from stream.core.ledger import SourceRef
from stream.core.pipeline import Pipeline, PipelineConfig
from stream.core.smoothing import SmoothingConfig
from stream.core.windowing import WindowConfig
from stream.core.wire import CorruptFrameError, FrameBatch, encode_frame_batch, BadMagicError
from stream.dev.testing import FakeClock, ListSource, ScriptedPredictor, solid_batch

T0 = 1_700_000_000_000_000_000   # solid_batch's capture time of frame 0: the first epoch of its cameras

RED, BLUE = (230, 20, 20), (20, 20, 230)
CFG = PipelineConfig(window=WindowConfig(window_stride=2, reorder_tolerance=0, max_fill=0),
                     smoothing=SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, max_windows=4,
                                               ignore_labels=("other",)),
                     max_batch=8, max_wait_ms=0)


def colours(n_frames, red_ranges):
    return [RED if any(a <= i < b for a, b in red_ranges) else BLUE for i in range(n_frames)]


def source(cameras, n=48, k=4, red=((8, 30),)):
    src = ListSource()
    col = colours(n, red)
    for first in range(0, n, k):
        for cam in cameras:
            src.add(solid_batch(cam, first, col[first:first + k]))
    return src


def run_all(pipe, items):
    events = []
    for value, ref in items:
        pipe.offer_bytes(value, ref)
        while pipe.pending:
            events += pipe.step(force=True).events
    return events


def test_two_cameras_events_and_cross_camera_batches():
    pred = ScriptedPredictor()
    pipe = Pipeline(pred, config=CFG, clock=FakeClock())
    events = []
    for value, ref in source(["a", "b"]):
        pipe.offer_bytes(value, ref)
    events = pipe.drain().events
    got = sorted((e.event.camera_id, e.event.label, e.event.start_seq, e.event.end_seq) for e in events)
    # window w covers w..w+3; red frames 8..29 -> windows 8..26 are red (10 windows) -> max 4 per event
    assert got == [(c, "red", s, e) for c in "ab" for s, e in ((8, 17), (16, 25), (24, 29))]
    assert max(pred.batches) == 8 and any(b > 1 for b in pred.batches)
    assert len({e.event.event_id for e in events}) == 6  # ids are unique per camera and range


def test_each_frame_preprocessed_once():
    pred = ScriptedPredictor()
    pipe = Pipeline(pred, config=CFG)
    run_all(pipe, source(["a"], n=40))
    assert pred.preprocessed == 40  # 19 overlapping windows of 4 frames, yet 40 preprocess calls


def test_max_wait_controls_batching():
    perf = FakeClock(0.0)
    pipe = Pipeline(ScriptedPredictor(), config=PipelineConfig(window=CFG.window, max_batch=100, max_wait_ms=50),
                    perf=perf)
    for value, ref in source(["a"], n=8):
        pipe.offer_bytes(value, ref)
    assert pipe.pending == 3 and not pipe.due()
    perf.advance(0.049)
    assert not pipe.due()
    perf.advance(0.002)
    assert pipe.due() and pipe.step().windows == 3


def test_corrupt_message_leaves_state_and_counts_offset():
    pipe = Pipeline(ScriptedPredictor(), config=CFG)
    good = solid_batch("a", 0, [RED] * 4)
    bad = FrameBatch(camera_id="a", first_seq=4, capture_ts_ns=(T0 + 160_000_000,), width=16, height=12, source_fps=25.0,
                     frames=(b"\xff\xd8garbage",))
    pipe.offer_bytes(encode_frame_batch(good), SourceRef("frames", 0, 0))
    with pytest.raises(CorruptFrameError):
        pipe.offer_bytes(encode_frame_batch(bad), SourceRef("frames", 0, 1))
    with pytest.raises(BadMagicError):
        pipe.offer_bytes(b"JUNKJUNKJUNK", SourceRef("frames", 0, 2))
    assert pipe.cameras.stats()["a"].frames_accepted == 4
    (offset, meta), = pipe.commit_points().values()
    assert offset == 0 and resume.decode(meta) == {"a": (0, T0)}  # window 0 waits for inference: replay from 0


def test_commit_point_holds_at_active_segment_then_moves():
    pipe = Pipeline(ScriptedPredictor(), config=CFG)
    items = list(source(["a"], n=48, red=((8, 30),)))
    run_all(pipe, items[:5])   # frames 0..19: red windows 8..14 closed by max_windows, 16 opens another
    (offset, meta), = pipe.commit_points().values()
    assert offset == 4 and resume.decode(meta) == {"a": (16, T0)}
    run_all(pipe, items[5:])   # segment closed by max_windows / blue frames; next open window near the end
    (offset, meta), = pipe.commit_points().values()
    assert offset == 11


@pytest.mark.parametrize("crash_after", [3, 5, 7, 9])
def test_crash_replay_from_commit_point_loses_no_event(crash_after):
    items = list(source(["a", "b"], n=60, red=((6, 25), (33, 50))))
    full = {e.event.event_id for e in run_all(Pipeline(ScriptedPredictor(), config=CFG), items)}
    first = Pipeline(ScriptedPredictor(), config=CFG)
    seen = {e.event.event_id for e in run_all(first, items[:crash_after * 2])}
    (offset, meta), = first.commit_points().values()
    # "crash": events published so far are acked (they were), state lost; restart from the commit
    second = Pipeline(ScriptedPredictor(), config=CFG)
    second.restore(("frames", 0), meta)
    replay = {e.event.event_id for e in run_all(second, [(v, r) for v, r in items if r.offset >= offset])}
    assert seen | replay == full
    assert replay <= full  # replays give the same ids, never new ones


def test_drop_partition_forgets_cameras():
    pipe = Pipeline(ScriptedPredictor(), config=CFG)
    for value, ref in source(["a"], n=8):
        pipe.offer_bytes(value, ref)
    assert pipe.pending == 3
    assert pipe.drop_partition(("frames", 0)) == 3
    assert pipe.pending == 0 and pipe.commit_points() == {}


def test_raw_predictions_when_enabled():
    from dataclasses import replace

    pipe = Pipeline(ScriptedPredictor(), config=replace(CFG, raw_predictions=True))
    for value, ref in source(["a"], n=8):
        pipe.offer_bytes(value, ref)
    preds = pipe.drain().predictions
    assert [(p.start_seq, p.end_seq) for p in preds] == [(0, 3), (2, 5), (4, 7)]
    assert set(preds[0].probabilities) == {"red", "other"} and b'"camera_id": "a"' in preds[0].to_json()


def test_a_poll_offered_at_once_gives_the_same_events_and_rejects_only_bad_messages():
    items = list(source(["a", "b"], n=40))
    one = {e.event.event_id for e in run_all(Pipeline(ScriptedPredictor(), config=CFG), items)}
    pred = ScriptedPredictor()
    pipe = Pipeline(pred, config=CFG)
    bad = [(b"JUNKJUNKJUNKJUNK", SourceRef("frames", 0, 100))]
    rejected = pipe.offer_messages(items[:10] + bad + items[10:])
    assert [r.ref.offset for r in rejected] == [100] and isinstance(rejected[0].error, BadMagicError)
    assert {e.event.event_id for e in pipe.drain().events} == one and one
    assert pred.preprocessed == 80


def test_frame_references_are_released():
    """Every prepared frame is released once windows move past it, inference used it, or its
    partition is dropped: nothing stays referenced (the GPU frame store would leak otherwise)."""
    pred = ScriptedPredictor()
    pipe = Pipeline(pred, config=CFG)
    run_all(pipe, source(["a", "b"], n=40))
    held = pred.refs
    assert 0 < held <= 2 * 4   # only the open window's frames, per camera
    corrupt = solid_batch("a", 40, [RED] * 4)
    corrupt = FrameBatch(**{**corrupt.__dict__, "frames": corrupt.frames[:3] + (b"\xff\xd8nope",)})
    with pytest.raises(CorruptFrameError):
        pipe.offer_bytes(encode_frame_batch(corrupt), SourceRef("frames", 0, 999))
    assert pred.refs == held   # the three good frames of the rejected message were let go
    for value, ref in source(["a"], n=48):   # duplicates and late frames are released too
        pipe.offer_bytes(value, ref)
    pipe.drop_partition(("frames", 0))
    assert pred.refs == 0 and pipe.pending == 0


@pytest.mark.parametrize("frame_stride", [1, 2])
def test_windows_from_the_frame_store_hold_exactly_the_ingested_frames(frame_stride):
    """The real store behind the pipeline: with a frame stride, a gap, a reordered and a duplicate
    batch, every window's gathered frames are the ingested frames of its sequence numbers."""
    import numpy as np
    import torch

    from soccerkd.spec import ClipSpec, InputSpec
    from stream.inference.predictors import TorchPredictor

    spec = InputSpec(clip=ClipSpec(num_frames=4, frame_stride=frame_stride), size=8, resize=8,
                     class_names=("a", "b"))

    class Mean(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 2)

    pred = TorchPredictor(Mean(), spec, model_name="m", device="cpu", decode_threads=2)
    pipe = Pipeline(pred, config=PipelineConfig(window=WindowConfig(window_stride=2, reorder_tolerance=2, max_fill=1),
                                                max_batch=4, max_wait_ms=0))
    shade = {q: (q * 5 % 250, 40, 90) for q in range(80)}   # frame q is a solid colour coding q
    firsts = [0, 4, 12, 8, 16, 16, 20, 24, 32, 36, 40, 44]      # 8 arrives after 12; 16 twice; 28..31 never
    got = []
    original = pred.predict

    def spy(windows):
        x = pred.batch_tensor(windows)
        for w, clip in zip(windows, x):
            got.append((w, clip.clone()))   # x is a reused buffer
        return original(windows)

    pred.predict = spy
    for i, first in enumerate(firsts):
        pipe.offer_bytes(encode_frame_batch(solid_batch("c", first, [shade[q] for q in range(first, first + 4)],
                                                        width=8, height=8)), SourceRef("frames", 0, i))
        pipe.drain()
    assert len(got) >= 8 and (frame_stride == 1 or any(w.filled for w, _ in got))
    mean = torch.tensor(spec.mean).view(3, 1, 1, 1) * 255
    std = torch.tensor(spec.std).view(3, 1, 1, 1) * 255
    for w, clip in got:
        red = (clip * std + mean)[0, :, 4, 4].round().numpy()   # centre pixel of each frame
        exact = [abs(red[k] - shade[q][0]) <= 3 for k, q in enumerate(w.seqs)]
        assert sum(exact) == len(w.seqs) - w.filled, (w.seqs, w.filled, red)
        for k in (k for k, ok in enumerate(exact) if not ok):   # a filled frame repeats a neighbour
            assert any(abs(red[k] - red[j]) <= 1 for j in (k - 1, k + 1) if 0 <= j < len(red) and exact[j])
    assert pred.store.in_use <= 4 * 2 + 4
    pipe.drop_partition(("frames", 0))
    assert pred.store.in_use == 0


def test_inference_runs_between_begin_and_finish_of_an_offer():
    """The service's order: start decoding a poll, run a batch meanwhile, then add the frames.
    Same events as offering at once, and the poll's offsets count only once it is finished."""
    items = list(source(["a", "b"], n=40))
    want = {e.event.event_id for e in run_all(Pipeline(ScriptedPredictor(), config=CFG), items)}
    pred = ScriptedPredictor()
    pipe = Pipeline(pred, config=CFG)
    events = []
    for lo in range(0, len(items), 4):
        offer = pipe.begin_offer(items[lo:lo + 4])
        assert ("frames", 0) not in pipe.commit_points() or pipe.commit_points()[("frames", 0)][0] <= lo
        events += pipe.step(force=True).events
        assert pipe.finish_offer(offer) == []
    events += pipe.drain().events
    assert {e.event.event_id for e in events} == want and pred.preprocessed == 80


def test_a_record_keyed_by_another_camera_is_rejected():
    from stream.core.wire import KeyMismatchError

    pipe = Pipeline(ScriptedPredictor(), config=CFG)
    value = encode_frame_batch(solid_batch("cam-a", 0, [RED] * 4))
    pipe.offer_bytes(value, SourceRef("frames", 0, 0, key=b"cam-a"))
    for key in (b"cam-b", b""):   # another camera's key, or a null key
        with pytest.raises(KeyMismatchError, match="not the camera id"):
            pipe.offer_bytes(value, SourceRef("frames", 0, 1, key=key))
    assert pipe.cameras.stats()["cam-a"].frames_accepted == 4


def test_camera_state_is_per_partition_and_commits_never_move_back():
    """The same camera id on two partitions (more partitions added, a wrong key upstream) is two
    independent streams: neither commit passes the other's open frames, and dropping one
    partition keeps the other's frames."""
    pred = ScriptedPredictor()
    pipe = Pipeline(pred, config=CFG)
    for i, first in enumerate(range(0, 48, 4)):
        pipe.offer_bytes(encode_frame_batch(solid_batch("a", first, [RED] * 4)), SourceRef("frames", 0, i))
    for i, first in enumerate(range(0, 12, 4)):
        pipe.offer_bytes(encode_frame_batch(solid_batch("a", first, [RED] * 4)), SourceRef("frames", 1, 100 + i))
    pipe.drain()
    points = pipe.commit_points()
    # partition 1's camera "a": windows 0..6 made one event (max 4 windows), window 8 opened another
    assert points[("frames", 1)][0] == 102 and resume.decode(points[("frames", 1)][1]) == {"a": (8, T0)}
    assert points[("frames", 0)][0] >= 1       # unaffected by partition 1
    before = points[("frames", 0)][0]
    pipe.offer_bytes(encode_frame_batch(solid_batch("a", 0, [RED] * 4)), SourceRef("frames", 0, 12))  # late
    assert pipe.commit_points()[("frames", 0)][0] >= before
    pipe.drop_partition(("frames", 1))
    assert pipe.cameras.stats()["a"].frames_accepted == 48 and pred.refs > 0
    assert set(pipe.commit_points()) == {("frames", 0)}


def test_commit_metadata_is_bounded_and_eviction_is_deterministic():
    entries = [resume.ResumeEntry(f"camera-{i:04d}", 10_000 + i, replay=i % 3 == 0) for i in range(300)]
    meta, evicted = resume.encode(entries)
    assert len(meta.encode()) <= resume.MAX_METADATA_BYTES < 4096 and evicted
    again, evicted_again = resume.encode(list(reversed(entries)))
    assert again == meta and evicted_again == evicted           # the order of the input does not matter
    kept = resume.decode(meta)
    assert all(int(c[-4:]) % 3 == 0 for c in list(kept)[:50])   # cameras in the replay range kept first
    assert kept == {e.camera_id: (e.resume, 0) for e in entries if e.camera_id in kept}
    odd = resume.ResumeEntry("cam;=%/é", 7, epoch=1_700_000_000_123_456_789)
    assert resume.decode(resume.encode([odd])[0]) == {"cam;=%/é": (7, 1_700_000_000_123_456_789)}
    assert resume.decode('{"v":1,"resume":{"a":16}}') == {"a": (16, 0)}   # version-1 commits still restore
    assert resume.decode("garbage") == {} and resume.decode(None) == {}


def test_the_local_broker_sets_the_metadata_limit_the_cap_is_below(tmp_path):
    from stream.dev.broker import LocalBroker

    broker = LocalBroker(tmp_path)
    broker._write_config(controller_port=19093)
    props = dict(line.split("=", 1) for line in broker.properties_path.read_text().splitlines() if "=" in line)
    assert int(props["offset.metadata.max.bytes"]) > resume.MAX_METADATA_BYTES


def test_a_segment_never_spans_a_long_capture_gap():
    """600 s between two red stretches with consecutive sequence numbers (an outage the
    ingester did not number): two events, not one spanning the outage."""
    from dataclasses import replace

    cfg = replace(CFG, window=replace(CFG.window, max_gap_s=2.0),
                  smoothing=replace(CFG.smoothing, max_windows=64))
    pipe = Pipeline(ScriptedPredictor(), config=cfg, clock=FakeClock())
    events = []
    for i, first in enumerate(range(0, 64, 4)):
        colour = BLUE if first >= 56 else RED
        t0 = 1_700_000_000_000_000_000 + (600 * 10**9 if first >= 32 else 0)   # frames 32.. after 600 s
        pipe.offer_bytes(encode_frame_batch(solid_batch("a", first, [colour] * 4, t0_ns=t0)), SourceRef("frames", 0, i))
        events += pipe.drain().events
    spans = sorted((e.event.start_seq, e.event.end_seq) for e in events)
    assert len(spans) == 2 and spans[0][1] < 32 <= spans[1][0], spans
    assert all(e.event.end_capture_ts_ns - e.event.start_capture_ts_ns < 2 * 10**9 for e in events)


def test_an_idle_camera_is_closed_evicted_and_stops_holding_the_commit():
    from dataclasses import replace

    cfg = replace(CFG, window=replace(CFG.window, idle_timeout_s=30.0), smoothing=replace(CFG.smoothing, max_windows=64))
    perf = FakeClock(0.0)
    pred = ScriptedPredictor()
    pipe = Pipeline(pred, config=cfg, perf=perf, clock=FakeClock())
    items = [(encode_frame_batch(solid_batch("a", first, [RED] * 4)), SourceRef("frames", 0, i))
             for i, first in enumerate(range(0, 24, 4))]
    for value, ref in items:   # camera "a": red, then it stops mid-segment
        pipe.offer_bytes(value, ref)
    assert pipe.drain().events == []
    (offset, _), = pipe.commit_points().values()
    assert offset == 0                                   # the open segment holds the commit at its start
    perf.advance(29.0)
    assert pipe.close_idle().events == []                 # not idle yet
    perf.advance(1.5)
    closed = pipe.close_idle().events
    assert [(e.event.start_seq, e.event.end_seq) for e in closed] == [(0, 23)]
    (offset, meta), = pipe.commit_points().values()
    assert offset == len(items) and resume.decode(meta) == {}   # nothing holds the partition back now
    assert pred.refs == 0
    # a replay of the same messages, idle again, closes the same segment: the same event id
    again = Pipeline(ScriptedPredictor(), config=cfg, perf=FakeClock(0.0), clock=FakeClock())
    for value, ref in items:
        again.offer_bytes(value, ref)
    again.drain()
    again.perf.advance(31.0)
    assert [e.event.event_id for e in again.close_idle().events] == [e.event.event_id for e in closed]


def _epoch_stream(second_start=0, *, fps2=25.0, t_gap_s=100.0):
    """Camera "a": red/blue frames 0..47, then the ingester restarts at ``second_start`` 100 s
    later (or with another fps) and sends 48 more."""
    items = []
    col = colours(48, ((8, 30),))
    t1 = 1_700_000_000_000_000_000
    t2 = t1 + int(t_gap_s * 1e9)
    for first in range(0, 48, 4):
        items.append(solid_batch("a", first, col[first:first + 4], t0_ns=t1))
    for first in range(0, 48, 4):
        items.append(solid_batch("a", second_start + first, col[first:first + 4], t0_ns=t2 - int(second_start * 1e9 / fps2),
                                 fps=fps2))
    return [(encode_frame_batch(b), SourceRef("frames", 0, i)) for i, b in enumerate(items)]


def test_an_ingester_restarted_at_zero_is_a_new_epoch_not_late_frames():
    from dataclasses import replace

    from prometheus_client import CollectorRegistry

    from stream.app.metrics import Metrics

    metrics = Metrics(CollectorRegistry())
    pipe = Pipeline(ScriptedPredictor(), config=replace(CFG, smoothing=replace(CFG.smoothing, max_windows=64)),
                    metrics=metrics, clock=FakeClock())
    events = run_all(pipe, _epoch_stream(0))
    by_epoch = {}
    for e in events:
        by_epoch.setdefault(e.event.epoch, []).append((e.event.start_seq, e.event.end_seq))
    assert sorted(by_epoch) == [T0, 1_700_000_100_000_000_000]   # each epoch named by its first capture time
    assert by_epoch[T0] == by_epoch[1_700_000_100_000_000_000] == [(8, 29)]   # the same frames, twice
    assert len({e.event.event_id for e in events}) == 2                         # ids do not collide
    assert pipe.cameras.stats()["a"].late == 0
    assert metrics.registry.get_sample_value("soccerkd_stream_epochs_total", {"reason": "restart"}) == 1


def test_a_forged_sequence_jump_does_not_blind_the_camera():
    items = list(source(["a"], n=48, red=((0, 48),)))
    real = solid_batch("a", 12, [RED] * 4)   # the forger copies a plausible capture time
    forged = encode_frame_batch(FrameBatch(**{**real.__dict__, "first_seq": 10**9}))
    pipe = Pipeline(ScriptedPredictor(), config=CFG)
    run_all(pipe, items[:4] + [(forged, SourceRef("frames", 0, 99))])
    after = run_all(pipe, [(v, SourceRef("frames", 0, 100 + i)) for i, (v, _) in enumerate(items[4:])])
    assert pipe.cameras.stats()["a"].late == 0 and pipe.cameras.stats()["a"].frames_accepted == 32   # 16..47, a new epoch
    assert after and max(e.event.end_seq for e in after) >= 40                  # real frames still make events


def test_a_change_of_fps_pins_a_new_epoch_and_its_own_stride():
    from soccerkd.spec import ClipSpec, InputSpec

    spec = InputSpec(clip=ClipSpec(num_frames=4, frame_stride=1, target_fps=12.5), size=8, resize=8,
                     class_names=("red", "other"))
    pipe = Pipeline(ScriptedPredictor(spec=spec), config=CFG)
    items = _epoch_stream(48, fps2=50.0, t_gap_s=2.0)   # continues at seq 48 but at 50 fps
    run_all(pipe, items)
    epochs = sorted(cam.key[2] for cam in pipe.cameras)
    assert len(epochs) == 1 and epochs[0] != 0      # the 25 fps epoch ended, the 50 fps one is current
    cam = next(iter(pipe.cameras))
    assert cam.windows.stride() == 4 and cam.fps == 50.0   # 50 fps resampled to 12.5: stride 4


@pytest.mark.parametrize("crash_after", [8, 12, 13, 15, 18])
def test_a_replay_across_an_epoch_change_gives_the_same_ids(crash_after):
    from dataclasses import replace

    cfg = replace(CFG, smoothing=replace(CFG.smoothing, max_windows=64))
    items = _epoch_stream(0)
    full = {e.event.event_id for e in run_all(Pipeline(ScriptedPredictor(), config=cfg), items)}
    first = Pipeline(ScriptedPredictor(), config=cfg)
    seen = {e.event.event_id for e in run_all(first, items[:crash_after])}
    (offset, meta), = first.commit_points().values()
    second = Pipeline(ScriptedPredictor(), config=cfg)
    second.restore(("frames", 0), meta)
    replay = {e.event.event_id for e in run_all(second, [(v, r) for v, r in items if r.offset >= offset])}
    assert seen | replay == full and replay <= full


def test_an_epoch_that_repeats_an_earlier_start_time_gets_a_number_of_its_own():
    """Found by benchmarks/fuzz_envelope.py: two fps changes whose batches start at the same
    capture time used to land on one epoch key while the first still had windows waiting, and
    the next step raised IndexError. Epochs of a camera now only grow."""
    import dataclasses

    pipe = Pipeline(ScriptedPredictor(), config=PipelineConfig(window=WindowConfig(window_stride=1, reorder_tolerance=0,
                                                                                   max_fill=0)))
    tp = ("frames", 0)
    first = solid_batch("cam", 0, [(200, 0, 0)] * 8)
    pipe.offer_bytes(encode_frame_batch(first), SourceRef(*tp, 0))
    later = solid_batch("cam", 100, [(200, 0, 0)] * 8, t0_ns=first.capture_ts_ns[-1] + 10**9)
    pipe.offer_bytes(encode_frame_batch(dataclasses.replace(later, source_fps=30.0)), SourceRef(*tp, 1))
    pipe.offer_bytes(encode_frame_batch(dataclasses.replace(later, source_fps=50.0)), SourceRef(*tp, 2))
    out = pipe.drain()
    epochs = sorted({cam.key[2] for cam in pipe.cameras} | {e.event.epoch for e in out.events})
    assert len(epochs) == len(set(epochs)) and out.windows > 0
