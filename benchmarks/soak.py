"""Soak: `soccerkd serve` under steady load with 1% bad messages, for M minutes.

    python benchmarks/soak.py --minutes 30 [--cameras 4] [--fps 10] [--out soak.json]

A local broker; the real `soccerkd serve` in a subprocess; a load thread sending every camera's
frames in real time (solid-colour 64x48 JPEGs whose colour changes every few seconds, so events
keep coming), with one message in a hundred taken from the bad-input corpus
(``stream.dev.badinput.bad_input_corpus``). It samples the serve process's RSS and open file
descriptors each minute. At the end, after a SIGTERM, it checks that nothing was lost: serve read
every frames message (its count equals the topic's end offsets),
every event serve reports having made is on the events topic, and every bad message sent is on
the dead-letter topic. (Running the model offline over half an hour of frames, as the chaos
oracle does, would take longer than the soak on a CPU.) It prints a table, draws RSS over time
(``--plot``) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def proc_stats(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open file descriptors) of ``pid`` from /proc."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--fps", type=float, default=10.0, help="frames per second per camera")
    p.add_argument("--bad-fraction", type=float, default=0.01)
    p.add_argument("--out", type=Path, default=Path("soak.json"))
    p.add_argument("--plot", type=Path, default=None, help="PNG of RSS and open fds over time")
    args = p.parse_args(argv)

    from soccerkd.config import dump_config
    from stream.dev.broker import LocalBroker, free_port
    from stream.config import BatchingConfig, ModelConfig, StreamConfig
    from stream.kafka.config import KafkaConfig
    from stream.kafka.events import iter_records, read_events
    from stream.kafka.connection import make_producer
    from stream.core.wire import encode_frame_batch
    from stream.core.smoothing import SmoothingConfig
    from stream.dev.badinput import bad_input_corpus
    from stream.dev.testing import solid_batch
    from stream.core.windowing import WindowConfig

    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    broker = LocalBroker(tmp / "broker").start()
    uid = uuid.uuid4().hex[:6]
    kafka = KafkaConfig(bootstrap=broker.bootstrap, frames_topic=f"soak-frames-{uid}", events_topic=f"soak-events-{uid}",
                        dlq_topic=f"soak-dlq-{uid}", group_id=f"soak-{uid}")
    broker.create_topic(kafka.frames_topic, partitions=2, config={"max.message.bytes": str(16 * 1024 * 1024)})
    broker.create_topic(kafka.events_topic)
    broker.create_topic(kafka.dlq_topic, config={"max.message.bytes": str(16 * 1024 * 1024)})
    cfg = StreamConfig(kafka=kafka, model=ModelConfig(checkpoint=Path("demo"), device="cpu", amp="none", cpu_threads=1),
                       windows=WindowConfig(window_stride=4, reorder_tolerance=0, max_fill=0, idle_timeout_s=600),
                       smoothing=SmoothingConfig(min_windows=2, max_windows=16),
                       batching=BatchingConfig(max_batch=16, max_wait_ms=50), metrics_port=free_port(), log_every_s=60)
    cfg_path = tmp / "serve.yaml"
    dump_config(cfg, cfg_path)
    log = open(tmp / "serve.log", "w")
    serve = subprocess.Popen([sys.executable, "-m", "stream.cli", "serve", "--config", str(cfg_path)], cwd=ROOT,
                             stdout=log, stderr=subprocess.STDOUT)
    corpus = [(v, k) for v, k, _ in bad_input_corpus().values()]
    stop = threading.Event()
    sent = {"good": 0, "bad": 0}

    def load() -> None:
        producer = make_producer(kafka, client_id="soak-load")
        rng = random.Random(0)
        per_batch, period = 4, 4 / args.fps
        seq = [0] * args.cameras
        t_next = time.monotonic()
        while not stop.is_set():
            for c in range(args.cameras):
                cam = f"soak-{c}"
                if rng.random() < args.bad_fraction:
                    value, key = rng.choice(corpus)
                    producer.send(kafka.frames_topic, key=key or None, value=value)
                    sent["bad"] += 1
                phase = (seq[c] // int(args.fps * 6)) % 2   # the colour flips every 6 s: events
                colour = (220, 40, 40) if phase == 0 else (40, 40, 220)
                batch = solid_batch(cam, seq[c], [colour] * per_batch, width=64, height=48, fps=args.fps,
                                    t0_ns=time.time_ns() - int(seq[c] * 1e9 / args.fps))
                producer.send(kafka.frames_topic, key=cam.encode(), value=encode_frame_batch(batch))
                seq[c] += per_batch
                sent["good"] += 1
            t_next += period
            stop.wait(max(0.0, t_next - time.monotonic()))
        producer.flush()
        producer.close()

    samples: list[dict] = []
    loader = threading.Thread(target=load, daemon=True)
    try:
        time.sleep(20)   # serve loads torch and the model
        loader.start()
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        while time.monotonic() < end:
            if serve.poll() is not None:
                raise SystemExit(f"serve exited with {serve.returncode}; see {tmp / 'serve.log'}")
            rss, fds = proc_stats(serve.pid)
            samples.append({"minute": round((time.monotonic() - t0) / 60, 2), "rss_mib": round(rss, 1), "fds": fds})
            print(f"{samples[-1]['minute']:6.2f} min  RSS {rss:7.1f} MiB  fds {fds:4d}  sent {sent}", file=sys.stderr)
            time.sleep(min(60.0, max(1.0, end - time.monotonic())))
        stop.set()
        loader.join(30)
        time.sleep(10)   # serve runs what waits
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(120)
        log.close()
        stopped = [line for line in (tmp / "serve.log").read_text().splitlines() if line.startswith("stopped:")]
        counts = {k: int(v) for k, v in (item.split("=") for item in stopped[-1].split()[1:])} if stopped else {}
        events = [e.event_id for e in read_events(kafka.bootstrap, kafka.events_topic, timeout_s=120, idle_s=5)]
        dlq = sum(1 for _ in iter_records(kafka.bootstrap, kafka.dlq_topic, timeout_s=60, idle_s=5))
        from kafka import KafkaConsumer, TopicPartition

        reader = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=None, enable_auto_commit=False)
        ends = reader.end_offsets([TopicPartition(kafka.frames_topic, p) for p in range(2)])
        reader.close()
        # every message read (the commit itself trails on purpose: open segments hold it back)
        unconsumed = sum(ends.values()) - counts.get("messages", 0)
    finally:
        stop.set()
        if serve.poll() is None:
            serve.kill()
        broker.stop()
    first, last = samples[0], samples[-1]
    lost = max(0, counts.get("events", 0) - len(set(events))) + unconsumed + max(0, sent["bad"] - dlq)
    result = {"minutes": args.minutes, "cameras": args.cameras, "fps": args.fps, "messages_sent": sent,
              "serve_exit_code": code, "serve_counts": counts, "dead_letters": dlq,
              "events_made": counts.get("events", 0), "events_on_topic": len(events),
              "duplicate_events": len(events) - len(set(events)), "frames_messages_unconsumed": unconsumed,
              "events_lost": lost,
              "rss_mib_start": first["rss_mib"], "rss_mib_end": last["rss_mib"],
              "rss_mib_max": max(s["rss_mib"] for s in samples), "fds_start": first["fds"], "fds_end": last["fds"],
              "samples": samples}
    print(f"{'minutes':<22}{args.minutes:g}\n{'messages good/bad':<22}{sent['good']}/{sent['bad']}\n"
          f"{'dead letters':<22}{dlq}\n{'events made/on topic':<22}{counts.get('events', 0)}/{len(events)}\n"
          f"{'messages unconsumed':<22}{unconsumed}\n{'lost':<22}"
          f"{result['events_lost']}\n{'RSS MiB start/end/max':<22}{first['rss_mib']}/{last['rss_mib']}/"
          f"{result['rss_mib_max']}\n{'open fds start/end':<22}{first['fds']}/{last['fds']}\n"
          f"{'serve exit code':<22}{code}")
    args.out.write_text(json.dumps(result, indent=2))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot([s["minute"] for s in samples], [s["rss_mib"] for s in samples], label="RSS (MiB)")
        ax.set_xlabel("minutes")
        ax.set_ylabel("RSS (MiB)")
        ax2 = ax.twinx()
        ax2.plot([s["minute"] for s in samples], [s["fds"] for s in samples], color="tab:orange", label="open fds")
        ax2.set_ylabel("open fds")
        ax.set_title(f"soak: {args.cameras} cameras at {args.fps:g} fps, {args.bad_fraction:.0%} bad messages")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
    print(f"wrote {args.out}")
    return 0 if result["events_lost"] == 0 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
