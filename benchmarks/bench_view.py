"""What ``soccerkd view`` costs: CPU of the view process while cameras run and a page watches.

N cameras (a looping file each, real ``ingest`` threads at real-time pace) publish to a local
broker; ``soccerkd view`` runs as its own process; a client does what the page does (``/api/state``
once a second, a camera's picture whenever its version changed). After a warm-up, the view's CPU
time (utime + stime from /proc) is read over ``--seconds``. No serve runs: the view's cost does
not depend on it (an event is one small JSON record).

    python benchmarks/bench_view.py --cameras 2 --size 320x240 --seconds 60 --out runs/bench/view.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_video(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    import cv2
    import numpy as np

    w, h = size
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (w, h))
    for i in range(100):
        img = np.full((h, w, 3), (40, 110, 40), np.uint8)
        x = (i * 3) % max(1, w - w // 8)
        img[h // 2 - h // 12:h // 2 + h // 12, x:x + w // 8] = colour
        out.write(img)
    out.release()
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--size", default="320x240", help="frame size WxH of the cameras")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time, after --warmup")
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    sys.path.insert(0, str(ROOT))
    from stream.app.ingest import IngestOptions, ingest
    from stream.dev.broker import LocalBroker, free_port

    with tempfile.TemporaryDirectory() as tmp, LocalBroker(Path(tmp) / "broker") as broker:
        for topic in ("frames", "events"):
            broker.create_topic(topic, partitions=2)
        stop = threading.Event()
        ingesters = []
        for i in range(args.cameras):
            video = write_video(Path(tmp) / f"cam-{i}.avi", (w, h), ((50 * i) % 255, 40, 220))
            opts = IngestOptions(source=str(video), camera_id=f"cam-{i}", bootstrap=broker.bootstrap, topic="frames",
                                 frames_per_batch=5, pacing="realtime", loop=True, max_side=max(w, h))
            t = threading.Thread(target=ingest, args=(opts,), kwargs=dict(progress=False, stop=stop), daemon=True)
            t.start()
            ingesters.append(t)
        port = free_port()
        view = subprocess.Popen([sys.executable, "-m", "stream.cli", "view", "--bootstrap", broker.bootstrap,
                                 "--port", str(port), "--log-level", "warning"], cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        try:
            time.sleep(args.warmup)
            base = f"http://127.0.0.1:{port}"
            cpu0, t0, versions, fetched, state = cpu_seconds(view.pid), time.monotonic(), {}, 0, {}
            while time.monotonic() - t0 < args.seconds:
                with urllib.request.urlopen(base + "/api/state", timeout=5) as resp:
                    state = json.load(resp)
                for cam in state["cameras"]:
                    if versions.get(cam["camera_id"]) != cam["version"]:
                        versions[cam["camera_id"]] = cam["version"]
                        with urllib.request.urlopen(f"{base}/frame/{cam['camera_id']}.jpg", timeout=5) as resp:
                            resp.read()
                        fetched += 1
                time.sleep(1.0)
            cpu1, t1 = cpu_seconds(view.pid), time.monotonic()
        finally:
            view.terminate()
            view.wait(15)
            stop.set()
            for t in ingesters:
                t.join(10)
    result = {"cameras": args.cameras, "size": [w, h], "seconds": round(t1 - t0, 1),
              "view_cpu_s": round(cpu1 - cpu0, 2), "view_cpu_percent_of_a_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
              "frames_per_s_shown": round(state.get("frames_per_s", 0.0), 1), "pictures_fetched": fetched}
    print(f"{'cameras':>8} {'size':>9} {'seconds':>8} {'view CPU s':>10} {'% core':>7} {'frames/s':>9} {'pictures':>9}")
    print(f"{args.cameras:>8} {args.size:>9} {result['seconds']:>8} {result['view_cpu_s']:>10} "
          f"{result['view_cpu_percent_of_a_core']:>7} {result['frames_per_s_shown']:>9} {fetched:>9}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
