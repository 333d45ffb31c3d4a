"""Which camera epoch each frame batch belongs to, decided from the frames alone (the rules of
:mod:`stream.core.epochs`) and the committed resume hints (:mod:`stream.core.ledger`). Pure."""

from __future__ import annotations

from stream.core.cameras import Camera, CameraTable
from stream.core.epochs import continues, epoch_reason, first_epoch, next_epoch
from stream.core.ledger import OffsetLedger, TopicPartition
from stream.core.limits import LimitsConfig
from stream.core.ports import Predictor
from stream.core.smoothing import SmoothingConfig
from stream.core.windowing import WindowConfig
from stream.core.wire import FrameBatch


class CameraRouter:
    """Routes batches to camera epochs of ``cameras`` (read here, installed by the pipeline)."""

    def __init__(self, cameras: CameraTable, ledger: OffsetLedger, predictor: Predictor, *, window: WindowConfig,
                 smoothing: SmoothingConfig, limits: LimitsConfig) -> None:
        self.cameras = cameras
        self.ledger = ledger
        self.predictor = predictor
        self.window = window
        self.smoothing = smoothing
        self.limits = limits

    def refused(self, batch: FrameBatch, tp: TopicPartition) -> bool:
        """``batch`` would open a camera state on a partition already at the limit."""
        limit = self.limits.max_cameras_per_partition
        return self.cameras.open_cameras(tp) >= limit and self.cameras.current(tp, batch.camera_id) is None

    def may_start_epoch(self, previous: FrameBatch, batch: FrameBatch, tp: TopicPartition) -> bool:
        """``batch`` follows ``previous`` in one offer and may start an epoch: the offer ends
        before it, so its epoch is decided once ``previous`` was added, as in separate polls."""
        cam = self.cameras.current(tp, batch.camera_id)
        gap_ns = self.window.epoch_gap_ns
        return cam is None or not continues(previous, batch, gap_ns=gap_ns) or self._reason(cam, batch) is not None

    def _reason(self, cam: Camera, batch: FrameBatch) -> str | None:
        return epoch_reason(fps=cam.fps, newest_seq=cam.newest_seq if cam.newest_seq >= 0 else None,
                            newest_ts=cam.newest_ts, next_start=cam.windows.next_start, batch=batch,
                            max_seq_jump=self.window.max_seq_jump, gap_ns=self.window.epoch_gap_ns)

    def route(self, batch: FrameBatch, tp: TopicPartition) -> tuple[Camera | None, str | None]:
        """The camera epoch ``batch`` belongs to, and why it opens (None: it is the open one): the
        first, resumed from the committed hint if there is one ("first"), or a new one (an epoch
        rule's reason). An epoch opens (``Pipeline._open``) only once the batch's frames decode, so a
        dead-lettered message never ends or starts one. (None, why): a batch captured wholly before
        the epoch it would join began belongs to one that is over, and is dropped: "replayed" (a
        replay from a commit naming a later epoch) or "late" (it came after the epoch started);
        the same test both ways, so a replay drops what the first pass dropped."""
        cam = self.cameras.current(tp, batch.camera_id)
        if cam is None:
            hint = self.ledger.hint(tp, batch.camera_id)
            if hint is not None and max(batch.capture_ts_ns) < hint.epoch:   # see stream.core.epochs
                return None, "replayed"
            return self._new_camera(tp, batch, hint.epoch if hint else first_epoch(batch),
                                    hint.seq if hint else None), "first"
        reason = self._reason(cam, batch)
        if reason is not None:
            return self._new_camera(tp, batch, next_epoch(cam.key[2], batch)), reason
        return (None, "late") if max(batch.capture_ts_ns) < cam.key[2] else (cam, None)

    def _new_camera(self, tp: TopicPartition, batch: FrameBatch, epoch: int, resume_at: int | None = None) -> Camera:
        return Camera.open((tp, batch.camera_id, epoch), batch, self.predictor.input_spec, self.window, self.smoothing,
                           self.predictor, resume_at=resume_at)
