"""Deterministic, stratified train/val/test split by video, stored in a JSON manifest.

Within each class the videos are sorted by relative path, shuffled by ``random.Random`` seeded
with ``"<seed>:<class>"`` (stable across Python runs and platforms), then cut into
``val = round(n * f_val)``, ``test = round(n * f_test)`` and ``train = the rest``; a class with
at least 3 videos gets at least one video in every split. Each video is in exactly one split.

Manifest (``manifest.json`` in the dataset root by default)::

    {"format": "soccerkd.split/1", "seed": 0, "fractions": [0.7, 0.15, 0.15],
     "class_names": ["dribble", ...],
     "splits": {"train": [{"path": "dribble/v1.mp4", "label": "dribble"}, ...], "val": [...], "test": [...]}}
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from soccerkd.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "soccerkd.split/1"
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


@dataclass(frozen=True)
class SplitManifest:
    """Which video (path relative to the dataset root, with its class name) is in which split."""

    class_names: tuple[str, ...]
    splits: Mapping[str, tuple[tuple[str, str], ...]]
    seed: int = 0
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.splits) != set(SPLITS):
            raise DataError(f"a split manifest needs exactly the splits {SPLITS}, got {sorted(self.splits)}")
        seen: dict[str, str] = {}
        for name in SPLITS:
            for path, label in self.splits[name]:
                if path in seen:
                    raise DataError(f"video {path!r} is in both the {seen[path]!r} and {name!r} splits")
                if label not in self.class_names:
                    raise DataError(f"video {path!r} has label {label!r}, not one of {self.class_names}")
                seen[path] = name

    def entries(self, split: str) -> tuple[tuple[str, str], ...]:
        """``(relative_path, class_name)`` pairs of ``split`` ('train', 'val', 'test' or 'all')."""
        if split == "all":
            return tuple(e for s in SPLITS for e in self.splits[s])
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS + ('all',)}, got {split!r}")
        return self.splits[split]

    def counts(self) -> dict[str, dict[str, int]]:
        """Videos per class in each split."""
        return {s: dict(Counter(label for _, label in self.splits[s])) for s in SPLITS}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": MANIFEST_FORMAT, "seed": self.seed, "fractions": list(self.fractions),
            "class_names": list(self.class_names),
            "splits": {s: [{"path": p, "label": c} for p, c in self.splits[s]] for s in SPLITS},
        }
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> "SplitManifest":
        if data.get("format") != MANIFEST_FORMAT:
            raise DataError(f"{source!r} is not a split manifest (format {data.get('format')!r}, "
                            f"expected {MANIFEST_FORMAT!r})")
        try:
            splits = {s: tuple((str(e["path"]), str(e["label"])) for e in data["splits"][s]) for s in SPLITS}
            known = {"format", "seed", "fractions", "class_names", "splits"}
            return cls(class_names=tuple(data["class_names"]), splits=splits, seed=int(data["seed"]),
                       fractions=tuple(float(f) for f in data["fractions"]),  # type: ignore[arg-type]
                       extra={k: v for k, v in data.items() if k not in known})
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"split manifest {source!r} is malformed: {exc!r}") from exc


def _check_fractions(fractions: Iterable[float]) -> tuple[float, float, float]:
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0:
        raise ConfigError(f"fractions must be 3 non-negative numbers (train > 0) summing to 1, got {fractions!r}")
    return fr  # type: ignore[return-value]


def _cut(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    n_val, n_test = round(n * fractions[1]), round(n * fractions[2])
    if n >= 3:
        n_val = max(n_val, 1) if fractions[1] > 0 else 0
        n_test = max(n_test, 1) if fractions[2] > 0 else 0
    n_val = min(n_val, n)
    n_test = min(n_test, n - n_val)
    return n - n_val - n_test, n_val, n_test


def make_split(videos: Iterable[tuple[str, str]], class_names: Iterable[str], *, seed: int = 0,
               fractions: Iterable[float] = DEFAULT_FRACTIONS, extra: Mapping[str, Any] | None = None
               ) -> SplitManifest:
    """Split ``(relative_path, class_name)`` pairs per class; same inputs and seed -> same split."""
    fr = _check_fractions(fractions)
    names = tuple(class_names)
    by_class: dict[str, list[str]] = {c: [] for c in names}
    for path, label in videos:
        if label not in by_class:
            raise DataError(f"video {path!r} has label {label!r}, not one of {names}")
        by_class[label].append(path)
    out: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
    for label in names:
        paths = sorted(set(by_class[label]))
        random.Random(f"{seed}:{label}").shuffle(paths)
        n_train, n_val, _ = _cut(len(paths), fr)
        parts = (paths[:n_train], paths[n_train:n_train + n_val], paths[n_train + n_val:])
        for split, part in zip(SPLITS, parts):
            out[split].extend((p, label) for p in sorted(part))
    return SplitManifest(class_names=names, splits={s: tuple(v) for s, v in out.items()}, seed=seed,
                         fractions=fr, extra=dict(extra or {}))


def write_manifest(manifest: SplitManifest, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest.to_dict(), indent=1) + "\n")
    return path


def read_manifest(path: str | Path) -> SplitManifest:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split manifest {str(path)!r} does not exist; create it with "
                        f"'soccerkd data split {path.parent}'")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read split manifest {str(path)!r}: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(f"split manifest {str(path)!r} must hold a JSON object")
    return SplitManifest.from_dict(data, source=str(path))
