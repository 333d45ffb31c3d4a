"""The offset ledger: which offset of each partition is safe to commit, with what resume
metadata, given what was consumed and which cameras still have frames to replay. Pure.

**Commit point.** For each camera the *resume point* R is the start of the oldest window whose
events are not final (the pipeline computes it). Replaying a camera from R rebuilds the same
windows and the same smoother state, so the same event ids. A partition's committable offset is
the offset of the oldest message (of any of its cameras) holding a frame ``>= R``, and never
less than the last point given out; the metadata stores every camera's R (:mod:`.resume`) so
that, after a restart or rebalance, frames before R are skipped as replays rather than opening
windows that were already handled.

**A camera's newest message is always replayed** while its epoch is open, even when all its
frames lie before R: a replay then knows where the epoch stands (its newest frame, capture time
and fps) before the next batch arrives, so the epoch rules (:mod:`stream.core.epochs`) decide
that batch as they did the first time. Without it, a camera with nothing to replay was resumed
from R alone, and a restart at sequence 0 right after the commit was skipped as a replay. A
silent camera stops holding its partition back when it is evicted as idle.

Worked example: camera ``a`` on partition 0 sent messages at offsets 10 (frames 0..15) and 11
(frames 16..31), and its oldest unfinished window starts at frame 20. Message 10 holds only
frames below 20, so it is dropped from the camera's message list; message 11 holds frame 20, so
the partition's point is offset 11, with metadata ``a=14`` (20 in hex). Once every window of
``a`` up to frame 31 is final, R moves past 31, but message 11 is the camera's newest and stays:
the point remains 11 until ``a`` sends another message (or is evicted as idle, or the
partition's next commit finds the camera's epoch ended).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

from stream.core import resume

log = logging.getLogger("soccerkd.pipeline")
TopicPartition = tuple[str, int]
CameraKey = tuple[TopicPartition, str, int]   # (partition, camera, epoch): Kafka orders a partition only
CommitPoints = dict[TopicPartition, tuple[int, str]]


@dataclass(frozen=True)
class SourceRef:
    """Where a message came from (the frames topic, partition and offset) and its record key
    (``None``: not checked, as in tests; the service always passes the key, ``b""`` for null)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = field(default=None, compare=False)

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)


class OpenCamera(NamedTuple):
    """A camera epoch as the ledger sees it: its resume point (None: nothing to replay) and the
    (offset, last sequence number) of each of its messages still held, oldest first."""

    key: CameraKey
    resume_seq: int | None
    messages: deque[tuple[int, int]]


class OffsetLedger:
    """Per partition: the next offset consumed, the floor (the last commit point given out) and
    the resume hints read from the last commit."""

    def __init__(self) -> None:
        self._next_offset: dict[TopicPartition, int] = {}
        self._floor: dict[TopicPartition, int] = {}
        self._hints: dict[TopicPartition, dict[str, resume.ResumePoint]] = {}
        self._left_out: dict[TopicPartition, int] = {}   # cameras the last metadata had no room for

    def consumed(self, ref: SourceRef) -> None:
        """A message was handled (its frames taken, or it was dead-lettered)."""
        if ref.offset + 1 > self._next_offset.get(ref.tp, -1):
            self._next_offset[ref.tp] = ref.offset + 1

    def restore(self, tp: TopicPartition, metadata: str | None) -> None:
        """Apply a committed metadata string (resume points) for a newly assigned partition."""
        self._hints[tp] = resume.decode(metadata)

    def hint(self, tp: TopicPartition, camera_id: str) -> resume.ResumePoint | None:
        return self._hints.get(tp, {}).get(camera_id)

    def forget_hint(self, tp: TopicPartition, camera_id: str) -> None:
        self._hints.get(tp, {}).pop(camera_id, None)

    def drop(self, tp: TopicPartition) -> None:
        for table in (self._next_offset, self._hints, self._floor, self._left_out):
            table.pop(tp, None)

    def partitions(self) -> list[TopicPartition]:
        return sorted(self._next_offset)

    def commit_points(self, cameras: Iterable[OpenCamera]) -> CommitPoints:
        """``{(topic, partition): (offset, metadata)}`` safe to commit once outputs are acked.

        Drops from each camera's message list the messages wholly before its resume point. A
        partition's point never moves backwards, and its metadata stays within
        :data:`stream.core.resume.MAX_METADATA_BYTES` (cameras left out are logged: see
        :mod:`stream.core.resume` for what that costs on replay).
        """
        by_tp: dict[TopicPartition, list[OpenCamera]] = {}
        for cam in cameras:
            by_tp.setdefault(cam.key[0], []).append(cam)
        result: CommitPoints = {}
        for tp, next_offset in self._next_offset.items():
            offset = next_offset
            entries = {cam: resume.ResumeEntry(cam, r.seq, r.epoch, live=False)
                       for cam, r in self._hints.get(tp, {}).items()}
            # newest epoch first, so an older one still open overwrites it: replay starts there
            for key, r, messages in sorted(by_tp.get(tp, ()), key=lambda c: c.key[2], reverse=True):
                if r is None:
                    continue
                while len(messages) > 1 and messages[0][1] < r:   # the newest stays: see the module doc
                    messages.popleft()
                if messages:   # held in the order consumed: the first is the oldest
                    offset = min(offset, messages[0][0])
                entries[key[1]] = resume.ResumeEntry(key[1], r, key[2], replay=bool(messages))
            offset = max(offset, self._floor.get(tp, 0))
            self._floor[tp] = offset
            meta, evicted = resume.encode(list(entries.values()))
            if len(evicted) != self._left_out.get(tp, 0):   # once per change, not every commit
                self._left_out[tp] = len(evicted)
            else:
                evicted = []
            if evicted:
                log.warning("commit metadata of %s[%d] is full: %d camera(s) left out (first %r); a replay "
                            "from this commit may republish their open segments", tp[0], tp[1], len(evicted),
                            evicted[0])
            result[tp] = (offset, meta)
        return result
