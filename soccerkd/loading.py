"""Why a file could not be read safely, in words a user can act on, and the save-side guard.

``torch.load(weights_only=True)`` fails alike for a truncated download, a file that is no torch
file at all, and an intact file whose pickle holds an object the safe unpickler refuses (a numpy
scalar in the metadata, say). Only the first is cured by downloading again, so the messages differ.
"""

from __future__ import annotations

import re
from typing import Any

_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def refused_global(exc: BaseException) -> str | None:
    """The dotted name of the object the safe unpickler refused (``numpy._core.multiarray.scalar``),
    or None when ``exc`` is another kind of failure."""
    match = _GLOBAL.search(str(exc))
    return match.group(1) if match else None


def unreadable_reason(what: str, exc: BaseException, *, remedy: str) -> str:
    """The message for a ``torch.load(weights_only=True)`` failure of ``what`` (e.g.
    ``"checkpoint 'x.pt'"``). ``remedy`` is said when the file is damaged or not a torch file."""
    name = refused_global(exc)
    if name is not None:
        kind = "a numpy value" if name.startswith("numpy") else "a Python object"
        return (f"{what} is complete but holds {kind} ({name}) that safe loading refuses, because "
                f"unpickling it could run code; it is not truncated, downloading it again will not help. "
                f"Whoever wrote it should store plain numbers, lists or tensors instead (e.g. float(x), "
                f"x.tolist(), torch.from_numpy(x)); if you trust the file, load it once inside "
                f"torch.serialization.safe_globals([{name}]) and save it again with plain values")
    return f"{what} ({type(exc).__name__}); {remedy}"


def plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and numpy arrays as tensors, recursively
    through dicts, lists and tuples, so that a checkpoint stays readable by safe loading."""
    import numpy as np
    import torch

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(plain(v) for v in value)
    return value
