"""The end-to-end demo: broker -> procedural match -> ingest -> serve -> events -> summary.

Every part is the real one: a local Kafka broker, ``soccerkd ingest`` at real-time pace and
``soccerkd serve`` as separate processes, the event topic read back by a consumer. The summary
is measured: timeline agreement against the match's ground truth, latency quantiles from the
service's own Prometheus histogram, throughput from its frame counter.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from soccerkd.config import load_config
from stream.app.metrics import parse_metrics
from stream.app.outputs import plot_timeline, predicted_segments, write_events, write_overlay
from stream.config import StreamConfig
from stream.core.evaluation import Segment, frame_accuracy, histogram_quantile, match_segments
from stream.errors import StreamError
from stream.inference.artifacts import find_file, resolve_checkpoint

# ~43 s at 25 fps: every action more than once, transitions in both directions.
DEFAULT_TIMELINE: tuple[tuple[str, int], ...] = (
    ("walk", 100), ("run", 100), ("dribble", 125), ("kick", 40), ("walk", 90), ("run", 90),
    ("kick", 40), ("dribble", 110), ("run", 80), ("walk", 100),
)


@dataclass
class DemoResult:
    out_dir: Path
    num_frames: int
    events: list[dict[str, Any]]
    truth: list[Segment] = field(default_factory=list)
    metrics_text: str = ""
    wall_seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    synth_version: int | None = None   # the generator version of a rendered match


def run_demo(out_dir: str | Path, *, checkpoint: str | Path | None = None, source: str | Path | None = None,
             timeline: Sequence[tuple[str, int]] = DEFAULT_TIMELINE, seed: int = 7,
             config: str | Path = "configs/stream/demo.yaml", size: tuple[int, int] = (320, 240),
             settle_s: float = 20.0, log=print, tls: bool = False) -> DemoResult:
    """Run the whole path once and write ``summary.json``, ``timeline.png`` and ``overlay.mp4``.
    ``tls``: the broker gets an SSL listener and every client of the demo (serve, ingest, the
    event reader) talks to it over TLS."""
    from stream.dev.broker import LocalBroker, free_port

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = resolve_checkpoint(checkpoint or "demo")
    config = find_file(config) or config   # the repo's configs/ from any working directory
    t_start = time.monotonic()
    truth: list[Segment] = []
    version = None
    if source is None:
        from soccerkd.data.synth import render_match

        version = match_version(ckpt, log=log)
        log(f"[1/5] rendering a {sum(n for _, n in timeline)}-frame procedural match (generator v{version}, "
            f"the student's training data) with a known timeline ...")
        video = out / "match.mp4"
        gt = render_match(video, list(timeline), size=size, seed=seed, version=version)
        truth = [Segment(s["label"], s["start_frame"], s["end_frame"]) for s in gt["segments"]]
        num_frames = gt["num_frames"]
    else:
        from soccerkd.data.decode import probe

        video = Path(source)
        num_frames = probe(video).num_frames
        log(f"[1/5] using {video} ({num_frames} frames); no ground truth, so no timeline agreement")

    log("[2/5] starting a local Kafka broker ...")
    with LocalBroker(tls=tls) as broker:
        log(f"      Kafka {broker.version} at {broker.bootstrap} (started in {broker.startup_seconds:.1f} s)")
        for topic in ("frames", "events", "frames-dlq"):
            broker.create_topic(topic, config={"max.message.bytes": str(9 * 1024 * 1024)} if topic != "events" else None)
        bootstrap, security, tls_sets, tls_flags = broker.bootstrap, {}, [], []
        if tls:
            bootstrap = broker.ssl_bootstrap
            security = {"security_protocol": "SSL", "ssl_cafile": str(broker.ca_file)}
            tls_sets = ["--set", "kafka.security_protocol=SSL", "--set", f"kafka.ssl_cafile={broker.ca_file}"]
            tls_flags = ["--security-protocol", "SSL", "--ssl-cafile", str(broker.ca_file)]
            log(f"      clients use TLS on {bootstrap} (CA {broker.ca_file})")
        metrics_port = free_port()
        serve_cmd = [sys.executable, "-m", "stream.cli", "serve", "--config", str(config),
                     "--set", f"kafka.bootstrap={bootstrap}", "--set", f"model.checkpoint={ckpt}",
                     "--metrics-port", str(metrics_port), *tls_sets]
        log(f"[3/5] starting the service with student {ckpt} ...")
        serve_log = open(out / "serve.log", "w")
        serve = subprocess.Popen(serve_cmd, stdout=serve_log, stderr=subprocess.STDOUT)
        tail = EventTail(bootstrap, "events", log=log, security=security)
        try:
            _wait_ready(serve, metrics_port, out / "serve.log")
            log(f"[4/5] ingesting {video.name} at real-time pace ({num_frames / 25:.0f} s of video); "
                f"events as they arrive:")
            tail.start()
            ingest = subprocess.run(
                [sys.executable, "-m", "stream.cli", "ingest", "--source", str(video), "--camera-id", "demo-cam",
                 "--bootstrap", bootstrap, "--topic", "frames", "--pacing", "realtime",
                 "--frames-per-batch", "5", "--no-progress", *tls_flags], capture_output=True, text=True)
            if ingest.returncode != 0:
                raise StreamError(f"soccerkd ingest failed ({ingest.returncode}): {ingest.stderr[-2000:]}")
            log("      ingest done; waiting for the service to drain ...")
            _wait_drained(metrics_port, num_frames, settle_s)
            idle_s = load_config(StreamConfig, config, []).windows.idle_timeout_s
            if idle_s <= settle_s:   # the camera has stopped: its last segment is published on its idle close
                log(f"      waiting up to {idle_s + 5:g} s for the idle close (windows.idle_timeout_s) ...")
                _wait_idle_close(metrics_port, idle_s + 5)
            metrics_text = _scrape(metrics_port)
        except BaseException:
            tail.stop()
            raise
        finally:
            serve.send_signal(signal.SIGTERM)  # graceful: finish the batch, publish, commit, close
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait(10)
            serve_log.close()
        events = tail.finish()
        log(f"[5/5] {len(events)} events read back; scoring them ...")
    result = DemoResult(out, num_frames, events, truth, metrics_text, time.monotonic() - t_start,
                        synth_version=version)
    result.summary = summarize(result)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    write_events(events, out / "events.jsonl")
    plot_timeline(events, num_frames, out / "timeline.png", truth=truth, title=timeline_title(result.summary))
    write_overlay(video, events, out / "overlay.mp4")
    return result


def match_version(checkpoint: Path, *, log=print) -> int:
    """The generator version to render the match with: the one the student was trained on (its
    checkpoint's ``synth`` record), so the demo's match and its model cannot drift apart. A
    checkpoint without the record (trained on other data, or older) gets v2, the matches rendered
    before the version was recorded, and the demo says so."""
    from soccerkd.data.synth import MATCH_DEFAULT_VERSION
    from soccerkd.train.checkpoint import load_checkpoint, synth_version

    version = synth_version(load_checkpoint(checkpoint))
    if version is None:
        log(f"      {checkpoint.name} records no generator version (not trained on procedural clips, or "
            f"older); rendering v{MATCH_DEFAULT_VERSION}")
        return MATCH_DEFAULT_VERSION
    return version


def _wait_ready(proc: subprocess.Popen, port: int, log_path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StreamError(f"soccerkd serve exited with {proc.returncode}; see {log_path}:\n"
                              + "\n".join(log_path.read_text().splitlines()[-20:]))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise StreamError(f"soccerkd serve was not ready within {timeout:.0f} s; see {log_path}")


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def _wait_drained(port: int, num_frames: int, settle_s: float) -> None:
    """Until the service has counted every frame and its window count stops moving."""
    deadline = time.monotonic() + max(settle_s, 5.0) + 60
    last, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        samples = parse_metrics(_scrape(port))
        frames = samples.get(("soccerkd_frames_total", ()), 0.0)
        windows = samples.get(("soccerkd_windows_total", ()), 0.0)
        inflight = samples.get(("soccerkd_inflight_windows", ()), 0.0)
        if (frames, windows) != last:
            last, stable_since = (frames, windows), time.monotonic()
        elif frames >= num_frames and inflight == 0 and time.monotonic() - stable_since > 2.0:
            return
        time.sleep(0.5)


def _wait_idle_close(port: int, timeout_s: float) -> None:
    """Until the service has closed an idle camera (its open segment ends at its last window)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if parse_metrics(_scrape(port)).get(("soccerkd_idle_evictions_total", ()), 0.0) >= 1:
            time.sleep(1.0)   # the closed segment's event is published in the same poll round
            return
        time.sleep(0.5)


class EventTail:
    """Prints events as a live table while the demo runs, and keeps them for scoring."""

    def __init__(self, bootstrap: str, topic: str, *, log=print, security: dict[str, Any] | None = None) -> None:
        self.bootstrap, self.topic, self.log, self.security = bootstrap, topic, log, security
        self.events: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-tail", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from stream.kafka.events import format_row, header, iter_records
        from stream.core.wire import ActionEvent

        try:
            self.log("      " + header())
            for rec in iter_records(self.bootstrap, self.topic, from_beginning=True, should_stop=self._stop.is_set,
                                    security=self.security):
                event = ActionEvent.from_json(rec.value)
                self.events.append(json.loads(event.to_json()))
                self.log("      " + format_row(event))
        except BaseException as exc:  # reported by finish(); a dead tail must not hang the demo
            self.error = exc

    def finish(self, idle_s: float = 3.0, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Stop once no event has arrived for ``idle_s`` (the service has stopped by now)."""
        deadline = time.monotonic() + timeout_s
        seen = -1
        while time.monotonic() < deadline and self._thread.is_alive():
            if len(self.events) == seen:
                break
            seen = len(self.events)
            time.sleep(idle_s)
        self._stop.set()
        self._thread.join(10)
        if self.error is not None:
            raise StreamError(f"reading the events topic failed: {self.error!r}") from self.error
        return list(self.events)


def latency_quantiles(samples: dict, name: str = "soccerkd_event_latency_seconds",
                      qs: Sequence[float] = (0.5, 0.95, 0.99)) -> dict[str, float]:
    buckets = sorted(((float(dict(labels)["le"]), value) for (n, labels), value in samples.items()
                      if n == f"{name}_bucket"), key=lambda b: b[0])
    return {f"p{round(q * 100)}": _finite(histogram_quantile(q, buckets)) for q in qs}


def _finite(value: float) -> float | None:
    """None (JSON null) for a quantity that could not be measured, e.g. no events at all."""
    return None if value is None or math.isnan(value) else value


def summarize(result: DemoResult) -> dict[str, Any]:
    samples = parse_metrics(result.metrics_text) if result.metrics_text else {}
    predicted = predicted_segments(result.events)
    per_label: dict[str, int] = {}
    for seg in predicted:
        per_label[seg.label] = per_label.get(seg.label, 0) + 1
    frames = samples.get(("soccerkd_frames_total", ()), 0.0)
    windows = samples.get(("soccerkd_windows_total", ()), 0.0)
    infer_sum = samples.get(("soccerkd_stage_seconds_sum", (("stage", "inference"),)))
    summary: dict[str, Any] = {
        "frames": result.num_frames,
        "frames_processed": frames,
        "windows": windows,
        "events": len(predicted),
        "events_per_label": per_label,
        "latency_seconds": latency_quantiles(samples),
        "wall_seconds": round(result.wall_seconds, 1),
        "inference_seconds_total": infer_sum,
        "model_windows_per_second": windows / infer_sum if infer_sum else None,
        "generator_version": result.synth_version,
        "idle_closes": samples.get(("soccerkd_idle_evictions_total", ()), 0.0),
    }
    if result.truth:
        score = match_segments(predicted, result.truth, iou=0.5)
        summary["timeline"] = {
            "iou_threshold": 0.5,
            "true_segments": len(result.truth),
            "precision": score.precision,
            "recall": score.recall,
            "f1": score.f1,
            "frame_accuracy": frame_accuracy(predicted, result.truth, result.num_frames),
        }
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    lat = {k: "n/a" if v is None else f"{v * 1000:.0f} ms" for k, v in summary["latency_seconds"].items()}
    speed = summary["model_windows_per_second"]
    lines = [
        "",
        "=== SoccerKD Stream demo summary ===",
        f"frames ingested / processed : {summary['frames']} / {summary['frames_processed']:.0f}",
        f"windows classified          : {summary['windows']:.0f}"
        + (f"  (model: {speed:.1f} windows/s of inference time)" if speed else ""),
        f"events                      : {summary['events']}  "
        + ", ".join(f"{k}={v}" for k, v in sorted(summary["events_per_label"].items())),
        f"event latency (histogram)   : p50 {lat['p50']}, p95 {lat['p95']}, p99 {lat['p99']}"
        + ("  (with the camera's last event, published at its idle close)" if summary.get("idle_closes") else ""),
    ]
    if "timeline" in summary:
        t = summary["timeline"]
        lines.append(f"timeline vs ground truth    : precision {t['precision']:.2f}, recall {t['recall']:.2f}, "
                     f"F1 {t['f1']:.2f} at IoU >= {t['iou_threshold']} ({t['true_segments']} true segments); "
                     f"frame accuracy {t['frame_accuracy']:.2f}")
    lines.append(f"wall time                   : {summary['wall_seconds']:.0f} s")
    return "\n".join(lines)


def timeline_title(summary: dict[str, Any]) -> str:
    title = "SoccerKD Stream: predicted action events"
    if "timeline" in summary:
        t = summary["timeline"]
        title += f" vs ground truth (P {t['precision']:.2f}, R {t['recall']:.2f} at IoU ≥ 0.5)"
    return title
