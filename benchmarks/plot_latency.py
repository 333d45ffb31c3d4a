"""Plot cameras against p99 latency from ``bench_pipeline.py`` JSON files (one line per file).

    python benchmarks/plot_latency.py runs/bench/zero_320_sweep.json ... --out docs/img/cameras_p99.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="bench_pipeline.py JSON files with a latency sweep")
    p.add_argument("--out", type=Path, default=Path("docs/img/cameras_p99.png"))
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for path in args.results:
        r = json.loads(path.read_text())
        pts = sorted(r["latency_sweep"], key=lambda pt: pt["cameras"])
        label = (f"{r['model']} {r['input']['size']} px, {r['frame_size'][0]}x{r['frame_size'][1]} frames, "
                 f"{r['decode']} decode ({r['device']})")
        ax.plot([pt["cameras"] for pt in pts], [pt["p99"] for pt in pts], marker="o", label=label)
        ax.axhline(r["latency_budget_s"], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel(f"live cameras at {r['fps']:g} fps")
    ax.set_ylabel("p99 latency, newest frame -> event (s)")
    ax.set_yscale("log")
    ax.set_title("Latency against load (dashed: window span + 150 ms)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
