"""Resume points in Kafka commit metadata: a compact encoding with a hard size cap.

The metadata of a partition's commit carries each camera's resume point R (see
:mod:`stream.core.pipeline`), so replayed frames before R are skipped. The broker refuses metadata
over ``offset.metadata.max.bytes`` (4096 by default, set explicitly by the local broker), so the
encoding is compact and capped at :data:`MAX_METADATA_BYTES`::

    2;cam-1=1f4;cam-2=2a0@18c2a    version 2; camera id (percent-escaped) = R in hex,
                                   then @ and the stream epoch in hex when it is not 0

A 12-character camera id with a 6-digit R takes 20 bytes, so about 150 cameras fit in a
partition's commit. When more would be needed, cameras are left out in a fixed order: first
hints restored from an earlier commit whose camera has not been seen since, then cameras with no
message in the replay range, then by camera id. **What leaving a camera out costs:** if the
partition is replayed from that commit, the camera's frames from the commit offset up to its R
are not known to be replays, so its windows there are rebuilt and its open segment may be
published again, with an id that can differ from the first time (its smoothing restarted
earlier). Version-1 metadata (JSON, before this encoding) is still read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, unquote

MAX_METADATA_BYTES = 3072
VERSION = "2"
_SAFE = "-_.:@~"   # kept as is in camera ids; everything else is percent-escaped


class ResumePoint(NamedTuple):
    seq: int          # replay of the camera starts at this frame
    epoch: int = 0    # of this stream epoch (see stream.core.pipeline)


@dataclass(frozen=True)
class ResumeEntry:
    camera_id: str
    resume: int
    epoch: int = 0
    live: bool = True          # the camera has been seen since the partition was assigned
    replay: bool = True        # it has messages at or after the commit offset (its hint matters)


def encode(entries: list[ResumeEntry], *, max_bytes: int = MAX_METADATA_BYTES) -> tuple[str, list[str]]:
    """The metadata string for ``entries`` and the camera ids left out to stay within ``max_bytes``."""
    order = sorted(entries, key=lambda e: (not e.live, not e.replay, e.camera_id))
    parts, size, evicted = [VERSION], len(VERSION), []
    for e in order:
        if evicted:   # full: the rest are left out in order, unencoded (thousands of cameras cost no time)
            evicted.append(e.camera_id)
            continue
        item = f"{quote(e.camera_id, safe=_SAFE)}={e.resume:x}" + (f"@{e.epoch:x}" if e.epoch else "")
        if size + 1 + len(item.encode()) > max_bytes:
            evicted.append(e.camera_id)
            continue
        parts.append(item)
        size += 1 + len(item.encode())
    return ";".join(parts), evicted


def decode(metadata: str | None) -> dict[str, ResumePoint]:
    """Camera id -> resume point from a commit's metadata (empty when absent or unreadable)."""
    if not metadata:
        return {}
    if metadata.startswith(VERSION + ";") or metadata == VERSION:
        out: dict[str, ResumePoint] = {}
        for item in metadata.split(";")[1:]:
            cam, sep, value = item.rpartition("=")
            seq, _, epoch = value.partition("@")
            try:
                if sep:
                    out[unquote(cam)] = ResumePoint(int(seq, 16), int(epoch, 16) if epoch else 0)
            except ValueError:
                continue
        return out
    try:   # version 1: {"v": 1, "resume": {camera: R}}
        data = json.loads(metadata)
        if isinstance(data, dict) and data.get("v") == 1:
            return {str(k): ResumePoint(int(v)) for k, v in dict(data.get("resume", {})).items()}
    except (ValueError, TypeError):
        pass
    return {}
