"""Teacher logits kept by the content of the clip they came from, in memory and, to share them
between runs of one teacher (an α × T grid over seeds), in a file.

A frozen teacher in eval mode maps one input tensor to one output, so its logits can be looked up by
a digest of the input's bytes instead of being recomputed: without augmentation a training clip
recurs every epoch (and in every run of the grid), so the teacher's forward, about half of a KD
step for a teacher 3× the student, is paid once per distinct clip. The key is the input's content,
not its position in the dataset, so a wrong hit would need a BLAKE2b collision; with augmentation
the cache is merely useless (every crop is new), never wrong. Cached logits equal a fresh pass up to
float rounding (the teacher ran them in another batch).

The file records the teacher checkpoint's sha256 and is ignored, with a warning, for another
teacher. Concurrent runs may share it: :meth:`TeacherLogitCache.sync` merges what the file holds
with what this process learnt and replaces the file atomically, so a lost race loses entries
(recomputed later), never corrupts them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Hashable, Iterator

import torch

DIGEST_BYTES = 16


def clip_digests(clips: torch.Tensor) -> list[bytes]:
    """One BLAKE2b digest per clip (first dimension) of the tensor's dtype, shape and bytes."""
    flat = clips.detach().to("cpu").contiguous()
    head = f"{flat.dtype}{tuple(flat.shape[1:])}".encode()
    return [hashlib.blake2b(head + row.numpy().tobytes(), digest_size=DIGEST_BYTES).digest() for row in flat]


class TeacherLogitCache:
    """``key -> logits`` (fp32, CPU) of one teacher; optionally backed by ``path``. Keys are
    :func:`clip_digests` (only these go to the file) or a caller's clip ids."""

    def __init__(self, *, teacher_sha256: str | None = None, path: str | Path | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.teacher_sha256 = teacher_sha256
        self.path = Path(path) if path is not None else None
        self._log = log
        self._rows: dict[Hashable, torch.Tensor] = {}
        self.hits = self.misses = 0
        if self.path is not None:
            self._rows.update(self._read())

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._rows

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._rows)

    def get(self, key: Hashable) -> torch.Tensor:
        self.hits += 1
        return self._rows[key]

    def put(self, key: Hashable, logits: torch.Tensor) -> None:
        self.misses += 1
        self._rows[key] = logits.detach().float().cpu()

    def clear(self) -> None:
        self._rows.clear()

    def take_hit_rate(self) -> float:
        """The share of lookups answered from the cache since the last call (0 when none)."""
        rate = self.hits / max(1, self.hits + self.misses)
        self.hits = self.misses = 0
        return rate

    def _read(self) -> dict[bytes, torch.Tensor]:
        assert self.path is not None
        if not self.path.is_file():
            return {}
        try:
            blob = torch.load(self.path, map_location="cpu", weights_only=True)
            keys, logits = blob["keys"], blob["logits"]
        except Exception as exc:   # a torn or foreign file is a cache miss, not a failed run
            self._log(f"WARNING teacher logit cache {self.path} is unreadable ({exc}); starting it afresh")
            return {}
        if blob.get("teacher_sha256") != self.teacher_sha256:
            self._log(f"WARNING teacher logit cache {self.path} belongs to teacher "
                      f"{str(blob.get('teacher_sha256'))[:12]}, not {str(self.teacher_sha256)[:12]}; not used")
            return {}
        return {bytes(k.tolist()): v for k, v in zip(keys, logits)}

    def sync(self) -> int:
        """Merge the file's entries into memory and write the union back (atomically); returns the
        number of entries. A no-op without a path."""
        if self.path is None:
            return len(self._rows)
        for key, row in self._read().items():
            self._rows.setdefault(key, row)
        rows = {k: v for k, v in self._rows.items() if isinstance(k, bytes) and len(k) == DIGEST_BYTES}
        if not rows:
            return len(self._rows)
        keys = torch.tensor([list(k) for k in rows], dtype=torch.uint8)
        blob = {"teacher_sha256": self.teacher_sha256, "keys": keys, "logits": torch.stack(list(rows.values()))}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        torch.save(blob, tmp)
        os.replace(tmp, self.path)
        return len(self._rows)
