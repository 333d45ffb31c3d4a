"""Model hot-swap (stream.app.swap) on the real predictor and pipeline, without Kafka: the swap
between two batches, what each event's model is, the refusals that keep the old model, the canary."""

import time

import pytest
from prometheus_client import CollectorRegistry

from stream.app.swap import ModelSwapper
from stream.core.ledger import SourceRef
from stream.core.pipeline import Pipeline, PipelineConfig
from stream.core.smoothing import SmoothingConfig
from stream.core.windowing import WindowConfig
from stream.core.wire import encode_frame_batch
from stream.dev.checkpoints import tiny_checkpoint
from stream.dev.testing import FakeClock, solid_batch
from stream.inference.predictors import TorchPredictor
from stream.inference.shadow import ShadowedPredictor

CFG = PipelineConfig(window=WindowConfig(window_stride=2, reorder_tolerance=0, max_fill=0),
                     smoothing=SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, max_windows=4),
                     max_batch=4, max_wait_ms=0)


def checkpoint(path, bias, classes=("kick", "run", "walk", "dribble"), frames=4):
    """A tiny real checkpoint whose output is softmax(bias) whatever the frames."""
    import torch

    from soccerkd.models import create_model
    from soccerkd.spec import ClipSpec, InputSpec
    from soccerkd.train.checkpoint import save_checkpoint

    spec = InputSpec(clip=ClipSpec(num_frames=frames, frame_stride=1), size=32, resize=32, class_names=classes)
    model = create_model("tsm_resnet18", num_classes=4, frames=frames, input_spec=spec)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    save_checkpoint(path, model_name="tsm_resnet18", model_state=model.state_dict(), input_spec=spec.to_dict(),
                    class_names=list(classes), model_kwargs={})
    return path


class Rig:
    """A live predictor of checkpoint ``a``, a swapper that reloads ``self.path``, a pipeline."""

    def __init__(self, a, *, canary_windows=0, canary_timeout_s=600.0):
        self.path = a
        self.live = TorchPredictor.from_checkpoint(a, device="cpu")
        self.swapper = ModelSwapper(self.live, load=lambda: TorchPredictor.from_checkpoint(self.path, device="cpu",
                                                                                          frame_store_mb=1),
                                    registry=CollectorRegistry(), canary_windows=canary_windows,
                                    canary_timeout_s=canary_timeout_s)
        self.pipe = Pipeline(ShadowedPredictor(self.live, self.swapper), config=CFG, clock=FakeClock())
        self.offset = 0

    def feed(self, first, n, cam="cam"):
        events = []
        for seq in range(first, first + n, 4):
            self.pipe.offer_bytes(encode_frame_batch(solid_batch(cam, seq, [(200, 30, 30)] * 4)),
                                  SourceRef("frames", 0, self.offset))
            self.offset += 1
            while self.pipe.pending:
                events += self.pipe.step(force=True).events
        return events

    def poll_until(self, done, timeout_s=60.0):
        """Poll the swapper as the serve loop does, until ``done()``; the events the polls returned."""
        events, deadline = [], time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, "the swapper did not get there"
            events += self.pipe.step(force=True).events + self.swapper.poll(self.pipe).events
            time.sleep(0.01)
        return events


def test_a_swap_between_batches_ends_the_open_segment_as_the_old_models_event(tmp_path):
    a = tiny_checkpoint(tmp_path / "a.pt", favour=0)   # always "kick"
    b = tiny_checkpoint(tmp_path / "b.pt", favour=1)   # always "run"
    rig = Rig(a)
    sha_a = rig.live.checkpoint_sha256
    before = rig.feed(0, 24)   # windows 0, 2, ..., 20: segments of 4 windows, the last one open
    rig.path = b
    rig.swapper.request()
    cut = rig.poll_until(lambda: rig.swapper.swaps == 1)
    # (a swap to the same model closes the last open segment, as the end of the stream would)
    after = rig.feed(24, 24) + rig.pipe.drain().events + rig.pipe.swap_model(lambda: None).events

    reference = Rig(a)
    ref = reference.feed(0, 48) + reference.pipe.drain().events + reference.pipe.swap_model(lambda: None).events
    ref_ids = {e.event.event_id for e in ref}

    old = [e.event for e in before + cut]
    new = [e.event for e in after]
    assert old and new
    assert {(e.label, e.checkpoint_sha256) for e in old} == {("kick", sha_a)}
    assert {(e.label, e.checkpoint_sha256) for e in new} == {("run", rig.live.checkpoint_sha256)} != {("run", sha_a)}
    # the events finished before the swap are the old model's own, ids and all
    assert all(e.event_id in ref_ids for e in (x.event for x in before))
    # the cut segment: the one open at the swap, ended at its last window; it starts as a reference event does
    assert len(cut) == 1 and cut[0].event.start_seq in {e.event.start_seq for e in ref}
    # every window served once, by one model: the new model's first window is the one after the
    # old model's last (4-frame windows, stride 2), and every window is in one event
    last_old_window = cut[0].event.end_seq - 3
    assert min(e.start_seq for e in new) == last_old_window + 2
    assert sum(e.num_windows for e in old + new) == sum(e.event.num_windows for e in ref) == 23   # starts 0..44
    assert rig.swapper.refusals == []


def test_a_bad_checkpoint_is_refused_and_the_old_model_keeps_serving(tmp_path):
    a = tiny_checkpoint(tmp_path / "a.pt", favour=0)
    rig = Rig(a)
    sha_a = rig.live.checkpoint_sha256
    cases = [("unchanged", a),
             ("incompatible", checkpoint(tmp_path / "order.pt", [0, 3, 0, 0],
                                         classes=("run", "kick", "walk", "dribble"))),
             ("incompatible", checkpoint(tmp_path / "frames.pt", [3, 0, 0, 0], frames=8)),
             ("load_error", tmp_path / "missing.pt")]
    (tmp_path / "torn.pt").write_bytes(a.read_bytes()[:1000])
    cases.append(("load_error", tmp_path / "torn.pt"))
    for i, (reason, path) in enumerate(cases):
        rig.path = path
        rig.swapper.request()
        rig.poll_until(lambda: len(rig.swapper.refusals) == i + 1)
        assert rig.swapper.refusals[-1] == reason, path
    assert rig.swapper.swaps == 0 and rig.live.checkpoint_sha256 == sha_a
    events = rig.feed(0, 24) + rig.pipe.drain().events
    assert events and {e.event.checkpoint_sha256 for e in events} == {sha_a}
    reg = rig.swapper.metrics
    assert reg.refusals.labels(reason="incompatible")._value.get() == 2


def test_the_canary_promotes_an_agreeing_model_and_refuses_a_disagreeing_one(tmp_path):
    a = tiny_checkpoint(tmp_path / "a.pt", favour=0)
    agree = checkpoint(tmp_path / "agree.pt", [2.5, 0, 0, 0])      # "kick" too, other weights
    disagree = checkpoint(tmp_path / "disagree.pt", [0, 0, 2.5, 0])  # "walk"
    rig = Rig(a, canary_windows=6)
    first = 0
    for path, outcome in ((disagree, "refused"), (agree, "swapped")):
        rig.path = path
        rig.swapper.request()
        deadline, outcomes = time.monotonic() + 60, rig.swapper.swaps + len(rig.swapper.refusals)
        while rig.swapper.swaps + len(rig.swapper.refusals) == outcomes:
            assert time.monotonic() < deadline
            rig.feed(first, 4)   # live windows for the canary
            first += 4
            rig.swapper.poll(rig.pipe)
            time.sleep(0.01)
        if outcome == "refused":
            assert rig.swapper.refusals == ["canary_disagrees"] and rig.swapper.swaps == 0
        else:
            assert rig.swapper.swaps == 1 and rig.live.checkpoint_sha256 != tiny_sha(a)


def tiny_sha(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_canary_times_out_without_live_windows(tmp_path):
    rig = Rig(tiny_checkpoint(tmp_path / "a.pt", favour=0), canary_windows=6, canary_timeout_s=0.2)
    rig.path = checkpoint(tmp_path / "b.pt", [2.5, 0, 0, 0])
    rig.swapper.request()
    rig.poll_until(lambda: rig.swapper.refusals == ["canary_timeout"])
    assert rig.swapper.swaps == 0 and not rig.swapper.busy


def test_model_config_refuses_bad_canary_settings():
    from soccerkd.errors import ConfigError
    from stream.config import ModelConfig

    for kwargs, name in (({"canary_windows": -1}, "canary_windows"), ({"canary_agreement": 1.5}, "canary_agreement"),
                         ({"canary_timeout_s": 0}, "canary_timeout_s")):
        with pytest.raises(ConfigError, match=name):
            ModelConfig(**kwargs)
