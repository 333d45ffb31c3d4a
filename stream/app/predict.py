"""Offline inference on video files: the service's own pipeline, fed from a file instead of Kafka.

Each video goes through the same steps as ``soccerkd ingest`` + ``soccerkd serve``: frames are
shrunk and JPEG-encoded into frame batches exactly as the ingester sends them, then
:class:`stream.core.pipeline.Pipeline` windows them with the checkpoint's clip spec, runs the model in
batches and smooths the window probabilities into events. So a video gives the same events (and
event ids) here as through Kafka with the same stream config, camera id and model. Capture
timestamps are media time (frame ``k`` at ``k / fps`` seconds), not wall time.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from soccerkd.errors import DataError

from stream.app.ingest import IngestOptions, frame_batches, open_source
from stream.app.outputs import plot_timeline, write_events, write_overlay
from stream.core.ledger import SourceRef
from stream.core.pipeline import Pipeline, PipelineConfig
from stream.core.wire import encode_frame_batch

DEFAULT_OUT = Path("runs/predict")


@dataclass
class PredictResult:
    """One video's run: its events (``ActionEvent`` dicts, in start order) and the files written."""

    video: Path
    out_dir: Path
    num_frames: int
    fps: float
    windows: int
    seconds: float
    events: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        return self.num_frames / self.seconds if self.seconds > 0 else 0.0


class MediaClock:
    """``perf`` for the pipeline in media seconds, so batching and idle closing follow the video,
    not how fast this machine decodes it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def check_videos(videos: Sequence[str | Path]) -> list[Path]:
    """Every input exists and OpenCV can read it, checked before any model is loaded.

    Raises :class:`DataError` naming the first bad file and what is wrong with it.
    """
    from soccerkd.data.decode import probe

    paths = [Path(v) for v in videos]
    for path in paths:
        if path.is_dir():
            raise DataError(f"video {str(path)!r} is a folder; pass video files (e.g. {str(path / '*.mp4')})")
        if not path.exists():
            raise DataError(f"video {str(path)!r} does not exist")
        info = probe(path)   # DataError for unreadable files, with the reason
        if info.num_frames < 1:
            raise DataError(f"video {str(path)!r} holds no frames OpenCV can decode")
    return paths


def output_dirs(videos: Sequence[Path], base: str | Path = DEFAULT_OUT) -> list[Path]:
    """``base/<video stem>`` per video; a stem seen before gets ``-2``, ``-3``, ... appended."""
    seen: dict[str, int] = {}
    out = []
    for video in videos:
        n = seen[video.stem] = seen.get(video.stem, 0) + 1
        out.append(Path(base) / (video.stem if n == 1 else f"{video.stem}-{n}"))
    return out


def run_video(video: Path, predictor: Any, config: PipelineConfig, *, camera_id: str,
              ingest: IngestOptions | None = None, progress: bool = True) -> tuple[list[dict[str, Any]], int, float, int]:
    """Feed one video through a fresh pipeline; returns ``(events, frames, fps, windows)``.

    ``ingest`` sets how frames are shrunk and encoded (default: what ``soccerkd ingest`` sends).
    """
    from tqdm import tqdm

    from soccerkd.data.decode import probe

    options = ingest or IngestOptions(source=str(video), camera_id=camera_id, pacing="fast")
    opened = open_source(str(video))
    clock = MediaClock()
    pipeline = Pipeline(predictor, config=config, perf=clock)
    events: list[Any] = []
    frames = windows = 0
    bar = tqdm(total=probe(video).num_frames, unit="frame", desc=video.name, file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    try:
        for offset, batch in enumerate(frame_batches(opened, options, anchor_ns=0)):
            clock.now = batch.capture_ts_ns[-1] / 1e9
            rejected = pipeline.offer_messages([(encode_frame_batch(batch), SourceRef("file", 0, offset))])
            if rejected:
                raise DataError(f"video {str(video)!r}: frames {batch.first_seq}..{batch.last_seq} cannot be "
                                f"used: {rejected[0].error}")
            while pipeline.pending >= config.max_batch:   # full batches only: nothing waits offline
                out = pipeline.step(force=True)
                events += out.events
                windows += out.windows
            frames += len(batch.frames)
            bar.update(len(batch.frames))
        out = pipeline.drain()
        events += out.events
        windows += out.windows
        clock.now += config.window.idle_timeout_s + 1.0   # the video ended: close its open segment
        events += pipeline.close_idle().events
    finally:
        bar.close()
    dicts = [json.loads(e.event.to_json()) for e in events]
    dicts.sort(key=lambda e: (e["start_seq"], e["end_seq"]))
    return dicts, frames, opened.fps, windows


def predict_video(video: Path, predictor: Any, config: PipelineConfig, out_dir: Path, *, overlay: bool = True,
                  progress: bool = True) -> PredictResult:
    """Run one video and write ``events.jsonl``, ``timeline.png`` and (``overlay``) ``overlay.mp4``
    into ``out_dir``. The camera id of its events is the video's file stem."""
    t0 = time.perf_counter()
    events, frames, fps, windows = run_video(video, predictor, config, camera_id=video.stem, progress=progress)
    seconds = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"events": str(write_events(events, out_dir / "events.jsonl")),
             "timeline": str(plot_timeline(events, frames, out_dir / "timeline.png",
                                           title=f"{video.name}: predicted action events",
                                           labels=list(predictor.input_spec.class_names)))}
    if overlay:
        files["overlay"] = str(write_overlay(video, events, out_dir / "overlay.mp4"))
    return PredictResult(video, out_dir, frames, fps, windows, seconds, events, files)
