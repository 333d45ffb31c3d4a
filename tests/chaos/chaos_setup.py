"""Setup shared by the chaos tests (``from chaos_setup import ...``): the brightness model and
its videos, the serve config, the offline oracle, and the service instances with their
supervisor (SIGKILL, SIGSTOP, fail-stop restarts)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from soccerkd.spec import ClipSpec, InputSpec
from stream.config import BatchingConfig, ModelConfig, StreamConfig
from stream.core.smoothing import SmoothingConfig
from stream.core.windowing import WindowConfig
from stream.kafka.config import KafkaConfig
from stream.kafka.events import iter_records

ROOT = Path(__file__).resolve().parents[2]


def brightness_checkpoint(path: Path) -> Path:
    """A TSM-ResNet-18 that computes a window's mean brightness and says "kick" above mid-grey,
    "run" below: conv1 averages its patch (+2 so the ReLUs keep it), every block passes its
    input through (zero convs, identity batch norms and 1x1 identity shortcuts), and the head
    compares channel 0 with 2."""
    import torch

    from soccerkd.models import create_model
    from soccerkd.train.checkpoint import save_checkpoint

    spec = InputSpec(clip=ClipSpec(num_frames=4, frame_stride=1), size=32, resize=32,
                     class_names=("kick", "run", "walk", "dribble"))
    model = create_model("tsm_resnet18", num_classes=4, frames=4, input_spec=spec)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.zero_()
            if name.endswith("bn1.weight") or ".bn" in name and name.endswith("weight") or "downsample.1.weight" in name:
                p.fill_(1.0)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
                m.eps = 0.0
        model.conv1.weight.fill_(1.0 / (3 * 49))
        model.bn1.bias.fill_(2.0)        # brightness + 2 stays positive through the ReLUs
        for layer in (model.layer2, model.layer3, model.layer4):
            conv = layer[0].downsample[0]
            conv.weight.zero_()
            for c in range(conv.weight.shape[1]):
                conv.weight[c, c, 0, 0] = 1.0
        model.fc.weight[0, 0] = 30.0     # kick: bright (logit 30 * brightness)
        model.fc.weight[1, 0] = -30.0    # run: dark
        model.fc.bias.copy_(torch.tensor([-60.0, 60.0, -20.0, -20.0]))
    save_checkpoint(path, model_name="tsm_resnet18", model_state=model.state_dict(), input_spec=spec.to_dict(),
                    class_names=list(spec.class_names), model_kwargs={})
    return path


def write_video(path: Path, n: int, seed: int, *, fps: float = 25.0) -> Path:
    """``n`` frames at ``fps`` whose brightness crosses mid-grey twice every 50-90 frames."""
    import cv2

    rng = np.random.default_rng(seed)
    period = int(rng.integers(50, 90))
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(n):
        level = int(127 + 120 * np.sin(2 * np.pi * i / period + seed))   # crosses mid-grey twice a period
        img = np.full((48, 64, 3), level, np.uint8)
        img[10:30, (i % 40):(i % 40) + 10] = rng.integers(0, 255, 3)
        out.write(img)
    out.release()
    return path


def chaos_config(bootstrap: str, checkpoint: Path, delivery: str) -> StreamConfig:
    uid = uuid.uuid4().hex[:8]
    return StreamConfig(
        kafka=KafkaConfig(bootstrap=bootstrap, frames_topic=f"frames-{uid}", events_topic=f"events-{uid}",
                          dlq_topic=f"dlq-{uid}", group_id=f"chaos-{uid}", commit_interval_ms=300,
                          session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_records=8,
                          delivery=delivery, connect_timeout_s=30),
        model=ModelConfig(checkpoint=checkpoint, device="cpu", amp="none", cpu_threads=1),
        windows=WindowConfig(window_stride=2, reorder_tolerance=0, max_fill=0, idle_timeout_s=600),
        smoothing=SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, max_windows=6),
        batching=BatchingConfig(max_batch=4, max_wait_ms=20, max_pending_windows=16, resume_pending_windows=4),
        log_every_s=0.5)


def oracle_events(cfg: StreamConfig) -> list:
    """The same pipeline offline over every frames message, in partition order."""
    from stream.inference.predictors import TorchPredictor
    from stream.core.ledger import SourceRef
    from stream.core.pipeline import Pipeline

    pipe = Pipeline(TorchPredictor.from_checkpoint(cfg.model.checkpoint, device="cpu", amp="none"),
                    config=cfg.pipeline_config())
    out = []
    # no total time-out: the model runs between records, and a cut-off would shorten the oracle
    for rec in iter_records(cfg.kafka.bootstrap, cfg.kafka.frames_topic, timeout_s=None, idle_s=5):
        pipe.offer_bytes(rec.value, SourceRef(rec.topic, rec.partition, rec.offset, key=rec.key))
        out += [e.event for e in pipe.drain().events]
    return out


def committed(cfg: StreamConfig) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=cfg.kafka.bootstrap, group_id=cfg.kafka.group_id,
                             enable_auto_commit=False, request_timeout_ms=5000)
    try:
        return {p: consumer.committed(TopicPartition(cfg.kafka.frames_topic, p)) or 0 for p in range(3)}
    except Exception:
        return {}
    finally:
        consumer.close()


class Instance:
    def __init__(self, name: str, cfg_path: Path, logs: Path) -> None:
        self.name, self.cfg_path, self.logs = name, cfg_path, logs
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.consumed: list[int] = []   # the last "messages=" each run reported

    def start(self) -> None:
        self.runs += 1
        log = open(self.logs / f"{self.name}-{self.runs}.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "stream.cli", "serve", "--config", str(self.cfg_path),
                                      "--set", f"kafka.group_instance_id={self.name}"],
                                     cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=log,
                                     stderr=subprocess.STDOUT)

    def wait_progress(self, timeout_s: float) -> bool:
        """Wait until this run has consumed something (so a kill lands mid-work, not at start-up)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.alive():
            if self.last_consumed() > 0:
                return True
            time.sleep(0.2)
        return False

    def last_consumed(self) -> int:
        text = (self.logs / f"{self.name}-{self.runs}.log").read_text()
        found = re.findall(r"messages=(\d+)", text)
        return int(found[-1]) if found else 0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.consumed.append(self.last_consumed())

    def pause(self, seconds: float) -> None:
        """SIGSTOP the process for ``seconds``, then SIGCONT: a process frozen past its session
        timeout (a stalled VM, a debugger, swap) that wakes up as a zombie member of the group."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)
            try:
                time.sleep(seconds)
            finally:
                self.proc.send_signal(signal.SIGCONT)

    def log_text(self) -> str:
        """Every run's log, in order."""
        return "".join((self.logs / f"{self.name}-{run}.log").read_text() for run in range(1, self.runs + 1))

    def fail_stopped(self) -> bool:
        """This run ended in the service's fail-stop (exit 1): a commit that could not finish in
        ``kafka.commit_timeout_s``, as after the broker restart; a supervisor restarts it."""
        return "failing stop" in (self.logs / f"{self.name}-{self.runs}.log").read_text()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:   # stuck: dump its stacks into its log, then kill
                self.proc.send_signal(signal.SIGUSR1)
                time.sleep(1)
                self.proc.kill()
                self.proc.wait()
        self.consumed.append(self.last_consumed())
        return self.proc.returncode


class Supervisor:
    """Starts again, and counts, an instance that exited by itself (a fail-stop), as an
    orchestrator would; paused while the test itself kills and restarts one."""

    def __init__(self, instances: list[Instance]) -> None:
        self.instances, self.restarts = instances, 0
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                for inst in self.instances:
                    if not inst.alive():
                        inst.kill()   # records what the run consumed
                        inst.start()
                        self.restarts += 1

    def paused(self) -> threading.Lock:
        return self._lock

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
