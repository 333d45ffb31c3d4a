"""Pipeline benchmark: bare-model clips/s vs the full pipeline, and end-to-end latency at fixed load.

One run, same frames, same model:

1. **bare model**: clips/s of the model on already preprocessed, batched clips (input already on
   the device), at batch sizes 1, 2, 4 ... ``max_batch``, before and after part 2; the best
   batch size is the reference;
2. **pipeline**: N cameras x ``seconds`` of frames are put on the frames topic first, then the
   service (in this process, real broker) consumes them: JPEG decode, preprocess, windows,
   batching, inference, smoothing, publishing, commits. clips/s = windows / wall time;
   **efficiency** = pipeline clips/s / bare clips/s;
3. **latency**: N camera threads offer frames in real time at ``fps``; every window becomes an
   event (thresholds 0, one window per event); latency = event publish time (``emitted_at``)
   minus the capture time of the newest frame in the window; p50/p95/p99 after a warm-up.

``--no-broker`` runs 2 and 3 through :class:`stream.pipeline.Pipeline` in process, without Kafka
(for machines without Java). Without ``--bootstrap`` a local broker is started (``stream.broker``).

    python benchmarks/bench_pipeline.py --cameras 4 --seconds 10 --out runs/bench/pipeline.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np


def synthetic_frames(n: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """Green pitch, white lines, a few moving players and a ball: cheap but JPEG-realistic."""
    import cv2

    rng = np.random.default_rng(seed)
    base = np.zeros((height, width, 3), np.uint8)
    base[...] = (40, 140, 50)
    base += rng.integers(0, 12, base.shape, dtype=np.uint8)
    cv2.line(base, (width // 2, 0), (width // 2, height), (230, 230, 230), 2)
    cv2.circle(base, (width // 2, height // 2), height // 5, (230, 230, 230), 2)
    players = rng.uniform(0, 1, (6, 2))
    vel = rng.uniform(-0.01, 0.01, (6, 2))
    frames = []
    for i in range(n):
        img = base.copy()
        for k, (x, y) in enumerate((players + vel * i) % 1.0):
            cx, cy = int(x * width), int(y * height)
            cv2.rectangle(img, (cx - 4, cy - 12), (cx + 4, cy + 12), (200, 30, 30) if k % 2 else (30, 30, 200), -1)
        cv2.circle(img, (int((0.2 + 0.01 * i) % 1 * width), height // 3), 3, (250, 250, 250), -1)
        frames.append(img)
    return frames


def build_predictor(args: argparse.Namespace):
    from soccerkd.spec import ClipSpec, InputSpec

    from stream.inference import TorchPredictor

    if args.checkpoint:
        return TorchPredictor.from_checkpoint(args.checkpoint, device=args.device, amp=args.amp)
    from soccerkd.models import create_model

    spec = InputSpec(clip=ClipSpec(num_frames=args.clip_frames, frame_stride=1), size=args.size,
                     resize=int(args.size * 8 / 7))
    model = create_model(args.model, num_classes=spec.num_classes, frames=args.clip_frames, input_spec=spec)
    return TorchPredictor(model, spec, model_name=args.model, checkpoint_sha256="random-init",
                          device=args.device, amp=args.amp)


def bare_model(pred, frames: list[np.ndarray], max_batch: int, min_seconds: float) -> dict[int, float]:
    """clips/s at batch sizes 1, 2, 4, ... up to ``max_batch`` (the best one is the reference)."""
    sizes = sorted({min(max_batch, 2 ** i) for i in range(max_batch.bit_length() + 1)})
    return {b: _bare_at(pred, frames, b, min_seconds) for b in sizes}


def _bare_at(pred, frames: list[np.ndarray], max_batch: int, min_seconds: float) -> float:
    import torch

    from stream.windowing import ClipWindow

    pre = [pred.preprocess_frame(f) for f in frames]
    t = pred.input_spec.clip.num_frames
    windows = [ClipWindow("c", i, i + t - 1, tuple(range(i, i + t)), tuple(pre[(i + j) % len(pre)] for j in range(t)),
                          tuple(range(t))) for i in range(max_batch)]
    x = pred.batch_tensor(windows)
    sync = torch.cuda.synchronize if pred.device.type == "cuda" else (lambda: None)
    for _ in range(3):
        pred.predict_tensor(x)
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds or n < 5:
        pred.predict_tensor(x)  # ends with .cpu(): synchronises
        n += 1
    return n * max_batch / (time.perf_counter() - t0)


def messages(jpegs: list[bytes], size: tuple[int, int], cameras: int, n_frames: int, k: int, fps: float,
             t0_ns: int) -> list[tuple[str, bytes]]:
    from stream.messages import FrameBatch, encode_frame_batch

    out = []
    for first in range(0, n_frames, k):
        for c in range(cameras):
            idx = range(first, min(first + k, n_frames))
            b = FrameBatch(camera_id=f"cam-{c}", first_seq=first,
                           capture_ts_ns=tuple(t0_ns + int(i * 1e9 / fps) for i in idx), width=size[0],
                           height=size[1], source_fps=fps, frames=tuple(jpegs[(i + 7 * c) % len(jpegs)] for i in idx))
            out.append((b.camera_id, encode_frame_batch(b)))
    return out


def expected_windows(n_frames: int, span: int, stride: int) -> int:
    return (n_frames - span) // stride + 1


def stream_config(args, bootstrap: str, names: dict[str, str], every_window: bool):
    from stream.config import BatchingConfig, KafkaConfig, ModelConfig, StreamConfig
    from stream.smoothing import SmoothingConfig
    from stream.windowing import WindowConfig

    smoothing = (SmoothingConfig(on_threshold=0.0, off_threshold=0.0, min_windows=1, max_windows=1)
                 if every_window else SmoothingConfig())
    return StreamConfig(
        kafka=KafkaConfig(bootstrap=bootstrap, frames_topic=names["frames"], events_topic=names["events"],
                          dlq_topic=names["dlq"], group_id=f"bench-{uuid.uuid4().hex[:6]}",
                          max_poll_records=args.max_poll_records, commit_interval_ms=1000),
        model=ModelConfig(device=args.device, amp=args.amp),
        windows=WindowConfig(window_stride=args.window_stride, reorder_tolerance=0, max_fill=0),
        smoothing=smoothing,
        batching=BatchingConfig(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                                max_pending_windows=args.max_batch * 8, resume_pending_windows=args.max_batch * 2),
        log_every_s=3600, decode_threads=args.decode_threads)


def topics(broker_obj, cameras: int) -> dict[str, str]:
    uid = uuid.uuid4().hex[:6]
    names = {k: f"bench-{k}-{uid}" for k in ("frames", "events", "dlq")}
    broker_obj.create_topic(names["frames"], partitions=cameras)
    broker_obj.create_topic(names["events"])
    broker_obj.create_topic(names["dlq"])
    return names


def kafka_throughput(args, pred, msgs, broker_obj, n_windows: int) -> dict:
    from stream.kafka import make_producer
    from stream.service import StreamService

    names = topics(broker_obj, args.cameras)
    cfg = stream_config(args, broker_obj.bootstrap, names, every_window=False)
    prod = make_producer(cfg.kafka)
    for cam, value in msgs:
        prod.send(names["frames"], key=cam.encode(), value=value, partition=int(cam.split("-")[1]) % args.cameras)
    prod.flush()
    prod.close()
    service = StreamService(cfg, predictor=pred)
    thread = threading.Thread(target=service.run, kwargs={"max_seconds": 600}, daemon=True)
    thread.start()
    t_first = None
    deadline = time.monotonic() + 600
    while service.counts["windows"] < n_windows and time.monotonic() < deadline:
        if t_first is None and service.counts["messages"] > 0:
            t_first = time.perf_counter()
        time.sleep(0.005)
    t_end = time.perf_counter()
    service.stop()
    thread.join(60)
    return {"windows": service.counts["windows"], "seconds": t_end - (t_first or t_end),
            "events": service.counts["events"]}


def inprocess_throughput(args, pred, msgs) -> dict:
    from stream.pipeline import Pipeline, SourceRef

    cfg = stream_config(args, "127.0.0.1:1", {"frames": "f", "events": "e", "dlq": "d"}, every_window=False)
    pipe = Pipeline(pred, config=cfg.pipeline_config())
    windows = events = 0
    t0 = time.perf_counter()
    for i, (_, value) in enumerate(msgs):
        pipe.offer_bytes(value, SourceRef("frames", 0, i))
        while pipe.pending >= args.max_batch:
            out = pipe.step(force=True)
            windows, events = windows + out.windows, events + len(out.events)
    out = pipe.drain()
    return {"windows": windows + out.windows, "seconds": time.perf_counter() - t0,
            "events": events + len(out.events)}


def offer_realtime(send, jpegs, size, args, stop_at: float) -> None:
    """One thread per camera: capture K frames at ``fps`` (wall clock), then send them."""
    from stream.messages import FrameBatch, encode_frame_batch

    def camera(c: int) -> None:
        seq, k = 0, args.frames_per_batch
        t0 = time.time()
        while time.time() < stop_at:
            due = t0 + (seq + k - 1) / args.fps
            time.sleep(max(0.0, due - time.time()))
            stamps = tuple(int((t0 + (seq + i) / args.fps) * 1e9) for i in range(k))
            b = FrameBatch(camera_id=f"cam-{c}", first_seq=seq, capture_ts_ns=stamps, width=size[0], height=size[1],
                           source_fps=args.fps, frames=tuple(jpegs[(seq + i) % len(jpegs)] for i in range(k)))
            send(c, encode_frame_batch(b))
            seq += k

    threads = [threading.Thread(target=camera, args=(c,), daemon=True) for c in range(args.cameras)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def kafka_latency(args, pred, jpegs, size, broker_obj) -> list[float]:
    from stream.events import iter_records
    from stream.kafka import make_producer
    from stream.messages import ActionEvent
    from stream.service import StreamService

    names = topics(broker_obj, args.cameras)
    cfg = stream_config(args, broker_obj.bootstrap, names, every_window=True)
    service = StreamService(cfg, predictor=pred)
    thread = threading.Thread(target=service.run, kwargs={"max_seconds": args.seconds + 120}, daemon=True)
    thread.start()
    while not service._assigned:  # wait for the group join before offering load
        time.sleep(0.05)
    prod = make_producer(cfg.kafka)
    lock = threading.Lock()

    def send(c: int, value: bytes) -> None:
        with lock:
            prod.send(names["frames"], key=f"cam-{c}".encode(), value=value, partition=c % args.cameras)

    start = time.time()
    offer_realtime(send, jpegs, size, args, stop_at=start + args.seconds)
    prod.flush()
    prod.close()
    time.sleep(2.0)
    service.stop()
    thread.join(60)
    lat = []
    for rec in iter_records(cfg.kafka.bootstrap, names["events"], timeout_s=30, idle_s=2):
        ev = ActionEvent.from_json(rec.value)
        if ev.end_capture_ts_ns / 1e9 >= start + args.warmup:
            lat.append(ev.emitted_at - ev.end_capture_ts_ns / 1e9)
    return lat


def inprocess_latency(args, pred, jpegs, size) -> list[float]:
    import queue

    from stream.pipeline import Pipeline, SourceRef

    cfg = stream_config(args, "127.0.0.1:1", {"frames": "f", "events": "e", "dlq": "d"}, every_window=True)
    pipe = Pipeline(pred, config=cfg.pipeline_config())
    q: "queue.Queue[tuple[int, bytes]]" = queue.Queue(maxsize=1024)
    start = time.time()
    feeder = threading.Thread(target=offer_realtime, args=(lambda c, v: q.put((c, v)), jpegs, size, args,
                                                          start + args.seconds), daemon=True)
    feeder.start()
    lat, offset = [], 0
    while feeder.is_alive() or not q.empty() or pipe.pending:
        try:
            while True:
                c, v = q.get(timeout=0.002 if not pipe.pending else 0)
                pipe.offer_bytes(v, SourceRef("f", c, offset))
                offset += 1
        except queue.Empty:
            pass
        out = pipe.step(force=not feeder.is_alive())
        now = time.time()
        lat += [now - e.newest_capture_ts_ns / 1e9 for e in out.events if e.newest_capture_ts_ns / 1e9 >= start + args.warmup]
    return lat


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="student checkpoint (default: random-init --model)")
    p.add_argument("--model", default="tsm_resnet18")
    p.add_argument("--size", type=int, default=112, help="model input side (random-init model)")
    p.add_argument("--clip-frames", type=int, default=8, help="frames per clip (random-init model)")
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of video per camera (both parts)")
    p.add_argument("--warmup", type=float, default=2.0, help="latency: ignore events of the first seconds")
    p.add_argument("--frame-size", default="320x240")
    p.add_argument("--frames-per-batch", type=int, default=5)
    p.add_argument("--jpeg-quality", type=int, default=85)
    p.add_argument("--window-stride", type=int, default=4)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=20.0)
    p.add_argument("--max-poll-records", type=int, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="auto", choices=("auto", "fp16", "bf16", "none"))
    p.add_argument("--decode-threads", type=int, default=1, help="JPEG decode + resize threads in the pipeline")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--bootstrap", default=None, help="use this broker instead of starting one")
    p.add_argument("--no-broker", action="store_true", help="pipeline in process, without Kafka")
    p.add_argument("--out", default="runs/bench/pipeline.json")
    args = p.parse_args(argv)

    import logging

    import torch
    from tqdm import tqdm

    from stream.messages import encode_image

    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.frame_size.lower().split("x"))
    steps = tqdm(total=4, desc="bench", unit="step")
    pred = build_predictor(args)
    frames = synthetic_frames(50, w, h)
    jpegs = [encode_image(f, quality=args.jpeg_quality) for f in frames]
    steps.update(1)
    bare_before = bare_model(pred, frames, args.max_batch, min_seconds=1.5)
    steps.update(1)

    n_frames = int(args.seconds * args.fps)
    span = pred.input_spec.clip.span(args.fps)
    n_windows = args.cameras * expected_windows(n_frames, span, args.window_stride)
    msgs = messages(jpegs, (w, h), args.cameras, n_frames, args.frames_per_batch, args.fps, time.time_ns())
    broker = None
    mode = "in-process (no Kafka)" if args.no_broker else "Kafka"
    try:
        if args.no_broker:
            thr = inprocess_throughput(args, pred, msgs)
            bare_after = bare_model(pred, frames, args.max_batch, min_seconds=1.5)
            steps.update(1)
            lat = inprocess_latency(args, pred, jpegs, (w, h))
        else:
            if args.bootstrap:
                from stream.broker import ExternalBroker

                broker = ExternalBroker(args.bootstrap)
            else:
                from stream.broker import LocalBroker

                broker = LocalBroker()
                broker.start()
            thr = kafka_throughput(args, pred, msgs, broker, n_windows)
            bare_after = bare_model(pred, frames, args.max_batch, min_seconds=1.5)
            steps.update(1)
            lat = kafka_latency(args, pred, jpegs, (w, h), broker)
        steps.update(1)
    finally:
        steps.close()
        if broker is not None:
            broker.stop()  # a no-op for an --bootstrap broker
    # Measured at every batch size before and after the pipeline run (on a shared machine the two
    # differ); the reference is the best batch size's mean of the two. Everything is in the JSON.
    per_batch = {b: (bare_before[b] + bare_after[b]) / 2 for b in bare_before}
    best_batch = max(per_batch, key=per_batch.get)
    bare = per_batch[best_batch]
    pipe_cps = thr["windows"] / thr["seconds"] if thr["seconds"] > 0 else float("nan")
    result = {
        "mode": mode, "device": str(pred.device), "amp": pred.amp, "model": pred.model_name,
        "input": {"clip_frames": pred.input_spec.clip.num_frames, "size": pred.input_spec.size},
        "torch": torch.__version__, "gpu": torch.cuda.get_device_name() if pred.device.type == "cuda" else None,
        "cameras": args.cameras, "fps": args.fps, "seconds": args.seconds, "frame_size": [w, h],
        "frames_per_batch": args.frames_per_batch, "window_stride": args.window_stride, "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms, "decode_threads": args.decode_threads, "bare_model_clips_per_s": bare,
        "bare_model_best_batch": best_batch,
        "bare_model_clips_per_s_by_batch": {str(b): {"before": bare_before[b], "after": bare_after[b]} for b in per_batch},
        "pipeline": {**thr, "expected_windows": n_windows, "clips_per_s": pipe_cps,
                     "frames_per_s": args.cameras * n_frames / thr["seconds"] if thr["seconds"] > 0 else None},
        "pipeline_efficiency": pipe_cps / bare,
        "latency_s": {"offered_load": f"{args.cameras} cameras x {args.fps:g} fps", "events": len(lat),
                      "p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99),
                      "mean": statistics.fmean(lat) if lat else None},
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    rows = [("mode", mode), ("device / amp", f"{result['device']} / {result['amp']}"),
            ("model", f"{pred.model_name} T={pred.input_spec.clip.num_frames} {pred.input_spec.size}px"),
            ("bare model clips/s", f"{bare:.1f}  (best batch {best_batch}; by batch: "
                                   + ", ".join(f"{b}: {v:.1f}" for b, v in per_batch.items()) + ")"),
            ("pipeline clips/s", f"{pipe_cps:.1f}  ({thr['windows']}/{n_windows} windows in {thr['seconds']:.2f} s)"),
            ("pipeline frames/s", f"{result['pipeline']['frames_per_s']:.1f}"),
            ("pipeline efficiency", f"{result['pipeline_efficiency']:.3f}"),
            ("offered load", result["latency_s"]["offered_load"] + f", {args.frames_per_batch} frames/message"),
            ("latency p50/p95/p99 s", f"{result['latency_s']['p50']:.3f} / {result['latency_s']['p95']:.3f} / "
                                      f"{result['latency_s']['p99']:.3f}  ({len(lat)} events)")]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in rows))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
