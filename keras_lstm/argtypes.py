"""Checks of the commands' flags. The ``type=`` functions make a bad number argparse's usage error (one
line, exit code 2) naming the flag, the text received and what was expected."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

__all__ = ["file_in_the_way", "non_negative_int", "positive_float", "positive_int"]


def _whole(text: str, least: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"got {text!r}; expected {expected}")
    return value


def positive_int(text: str) -> int:
    """A whole number, 1 or more."""
    return _whole(text, 1, "a whole number, 1 or more")


def non_negative_int(text: str) -> int:
    """A whole number, 0 or more."""
    return _whole(text, 0, "a whole number, 0 or more")


def positive_float(text: str) -> float:
    """A finite number above 0 (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"got {text!r}; expected a finite number above 0")
    return value


def file_in_the_way(folder: Path) -> Path | None:
    """The first of ``folder`` and its parents that exists but is not a directory (so ``folder`` can be
    neither used nor made), or None."""
    return next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
