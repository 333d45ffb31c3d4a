"""Deterministic, stratified train/val/test split by video, stored in a JSON manifest.

Within each class the videos are sorted by relative path, shuffled by ``random.Random`` seeded
with ``"<seed>:<class>"`` (stable across Python runs and platforms), then cut into
``val = round(n * f_val)``, ``test = round(n * f_test)`` and ``train = the rest``; a class with
at least 3 videos gets at least one video in every split. Each video is in exactly one split.

Grouped split (:func:`make_grouped_split`, ``soccerkd data split --group-by``): clips cut from the
same source (SoccerDB1 clips come from a few broadcasts) share a group, and every group lies in one
split only, so no match is seen in training and again in test. Groups are shuffled with
``"<seed>:groups"`` and each goes, in turn, to the split furthest below its target share of videos;
fractions are then met as closely as the group sizes allow (not per class).

Manifest (``manifest.json`` in the dataset root by default)::

    {"format": "soccerkd.split/1", "seed": 0, "fractions": [0.7, 0.15, 0.15],
     "class_names": ["dribble", ...],
     "splits": {"train": [{"path": "dribble/v1.mp4", "label": "dribble"}, ...], "val": [...], "test": [...]}}
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
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


def manifest_sha256(manifest: SplitManifest) -> str:
    """Hex sha256 of the manifest's content (canonical JSON), stored in checkpoints to tell which
    videos a model was trained and selected on."""
    return hashlib.sha256(json.dumps(manifest.to_dict(), sort_keys=True).encode()).hexdigest()


def heldout_sha256(manifest: SplitManifest) -> str:
    """Hex sha256 of the val and test splits only (sorted entries). Two manifests with the same
    held-out hash select and test on the same videos, so neither one's training videos can be the
    other's val or test videos: a KD teacher trained on more training videos is then admissible."""
    held = {s: sorted(manifest.splits[s]) for s in ("val", "test")}
    return hashlib.sha256(json.dumps(held, sort_keys=True).encode()).hexdigest()


def subset_train(manifest: SplitManifest, per_class: int, *, seed: int = 0) -> SplitManifest:
    """The same manifest with at most ``per_class`` training videos of each class (a seeded sample,
    ``random.Random("<seed>:<class>:subset")``); val and test stay exactly as they are."""
    if per_class < 1:
        raise ConfigError(f"per_class must be >= 1, got {per_class!r}")
    keep = []
    for name in manifest.class_names:
        entries = sorted(e for e in manifest.splits["train"] if e[1] == name)
        random.Random(f"{seed}:{name}:subset").shuffle(entries)
        keep += sorted(entries[:per_class])
    splits = dict(manifest.splits)
    splits["train"] = tuple(keep)
    extra = dict(manifest.extra)
    extra["train_subset"] = {"per_class": per_class, "seed": seed}
    return SplitManifest(class_names=manifest.class_names, splits=splits, seed=manifest.seed,
                         fractions=manifest.fractions, extra=extra)


def read_groups(videos: Iterable[tuple[str, str]], group_by: str) -> dict[str, str]:
    r"""``{relative_path: group}`` from a CSV file (``path,group`` rows; a header row is skipped) or
    a regular expression searched in each relative path (its first capture group, else the match).

    Example: ``--group-by '^[^/]+/(match\d+)_'`` puts ``kick/match07_0012.mp4`` in group ``match07``.
    """
    paths = [p for p, _ in videos]
    if Path(group_by).is_file():
        table: dict[str, str] = {}
        with open(group_by, newline="") as fh:
            for row in csv.reader(fh):
                if len(row) >= 2 and row[0].strip() and row[0].strip().lower() != "path":
                    table[row[0].strip()] = row[1].strip()
        missing = [p for p in paths if p not in table]
        if missing:
            raise DataError(f"group CSV {group_by!r} has no group for {len(missing)} videos, e.g. {missing[:3]}; "
                            f"add 'path,group' rows (paths relative to the dataset root)")
        return {p: table[p] for p in paths}
    try:
        pattern = re.compile(group_by)
    except re.error as exc:
        raise ConfigError(f"--group-by {group_by!r} is neither an existing CSV file nor a valid regular "
                          f"expression ({exc})") from exc
    groups = {}
    for p in paths:
        m = pattern.search(p)
        if m is None:
            raise DataError(f"--group-by {group_by!r} does not match video {p!r}; every video needs a group")
        groups[p] = m.group(1) if pattern.groups else m.group(0)
    return groups


def make_grouped_split(videos: Iterable[tuple[str, str]], class_names: Iterable[str], groups: Mapping[str, str], *,
                       seed: int = 0, fractions: Iterable[float] = DEFAULT_FRACTIONS,
                       extra: Mapping[str, Any] | None = None) -> SplitManifest:
    """Split whole groups (see the module docstring); same inputs and seed -> same split."""
    fr = _check_fractions(fractions)
    names = tuple(class_names)
    videos = sorted(set(videos))
    members: dict[str, list[tuple[str, str]]] = {}
    for path, label in videos:
        if label not in names:
            raise DataError(f"video {path!r} has label {label!r}, not one of {names}")
        if path not in groups:
            raise DataError(f"video {path!r} has no group")
        members.setdefault(groups[path], []).append((path, label))
    order = sorted(members)
    random.Random(f"{seed}:groups").shuffle(order)
    total = len(videos)
    out: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
    assignment: dict[str, str] = {}
    for g in order:
        deficit = {s: fr[i] * total - len(out[s]) for i, s in enumerate(SPLITS)}
        split = max(SPLITS, key=lambda s: (deficit[s], -SPLITS.index(s)))
        out[split].extend(members[g])
        assignment[g] = split
    meta = dict(extra or {})
    meta["groups"] = assignment
    return SplitManifest(class_names=names, splits={s: tuple(sorted(v)) for s, v in out.items()}, seed=seed,
                         fractions=fr, extra=meta)


def missing_classes(manifest: SplitManifest) -> dict[str, tuple[str, ...]]:
    """``{split: classes without a single video there}`` for the splits that lack some class. A
    grouped split can leave a class out of val or test (its videos all sit in a few groups); then
    that class's recall and the macro-F1 of that split measure nothing."""
    counts = manifest.counts()
    out = {s: tuple(c for c in manifest.class_names if not counts[s].get(c)) for s in SPLITS}
    return {s: names for s, names in out.items() if names}


def split_warnings(manifest: SplitManifest) -> list[str]:
    """One line per split that lacks a class (see :func:`missing_classes`), saying what to do."""
    grouped = "group_by" in manifest.extra or "groups" in manifest.extra
    hint = ("try another --seed or split by more, smaller groups" if grouped
            else "add videos of it or change the fractions")
    return [f"split {split!r} has no video of class{'es' if len(names) > 1 else ''} {', '.join(map(repr, names))}: "
            f"its per-class recall and macro-F1 there measure nothing; {hint}"
            for split, names in missing_classes(manifest).items()]


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
