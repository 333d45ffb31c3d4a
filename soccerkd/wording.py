"""Small text helpers for what users read: counts with the right plural."""

from __future__ import annotations


def plural(n: int, noun: str, many: str | None = None) -> str:
    """``n`` and ``noun`` in the right number.

    >>> plural(1, "video"), plural(3, "video"), plural(0, "class", "classes")
    ('1 video', '3 videos', '0 classes')
    """
    return f"{n} {noun if n == 1 else (many or noun + 's')}"
