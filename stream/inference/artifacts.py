"""Model checkpoints the service loads, by name or path: ``demo`` is the student shipped in the package.

:func:`resolve_checkpoint` is the one place a ``--checkpoint`` / ``model.checkpoint`` value becomes
a file, so ``soccerkd predict``, ``serve`` and ``demo`` accept the same values from any working
directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from stream.errors import StreamError

# name -> file inside the installed ``stream`` package
SHIPPED: dict[str, str] = {"demo": "assets/demo_student.pt"}


def shipped_checkpoint(name: str = "demo") -> Path | None:
    """The shipped checkpoint called ``name``, if this install has it."""
    path = Path(str(resources.files("stream") / SHIPPED[name]))
    return path if path.is_file() else None


def find_file(path: str | Path) -> Path | None:
    """``path`` if it exists; else, when relative, the same path under the folder holding the
    ``stream`` package (the checkout, for the repo's ``configs/`` and ``stream/assets/``); else None."""
    path = Path(path)
    if path.exists():
        return path
    if not path.is_absolute():
        beside_package = Path(str(resources.files("stream"))).parent / path
        if beside_package.exists():
            return beside_package
    return None


def resolve_checkpoint(value: str | Path) -> Path:
    """The checkpoint file ``value`` names: a shipped name (``demo``), or a path.

    A relative path that does not exist from the working directory is also tried from the folder
    that holds the ``stream`` package, so the README's ``stream/assets/demo_student.pt`` works from
    anywhere. Raises :class:`StreamError` naming the value and the choices when nothing is found.

    >>> resolve_checkpoint("demo").name
    'demo_student.pt'
    """
    text = str(value)
    if text in SHIPPED:
        found = shipped_checkpoint(text)
        if found is None:
            raise StreamError(f"the shipped checkpoint {text!r} (stream/{SHIPPED[text]}) is missing from this "
                              f"install; pass --checkpoint PATH to a best.pt written by 'soccerkd train'")
        return found
    path = Path(text).expanduser()
    found = find_file(path)
    if found is not None:
        return found
    names = ", ".join(repr(n) for n in SHIPPED)
    raise StreamError(f"checkpoint {text!r} does not exist; pass a best.pt written by 'soccerkd train' "
                      f"or a shipped name ({names})")
