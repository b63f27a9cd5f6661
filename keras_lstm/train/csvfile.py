"""Reading a user's CSV for ``train series`` and ``train classify``: streamed, checked, nothing dropped.

The file is read one row at a time with the standard library's ``csv`` module, and only the columns
asked for are kept, as float64 arrays (8 bytes a cell), so a file of a million rows costs its numbers,
not its text. Every refusal names the file, the line (line 1 is the header) and the column
(:class:`~keras_lstm.train.errors.CSVFormatError`).

Missing cells (empty, ``NA``, ``NaN``, ``null``, ``N/A``, any case) are refused unless a fill rule is
chosen (``--missing ffill`` or ``interpolate``); how many were filled is reported. Text in a numeric
column is always refused: a typo is not a missing value.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
from array import array
from dataclasses import dataclass, field

import numpy as np

from keras_lstm.train.errors import CSVFormatError

__all__ = ["MISSING_RULES", "Table", "fill_missing", "header_of", "order_by_time", "read_table", "sha256_of"]

MISSING_RULES = ("refuse", "ffill", "interpolate")
_MISSING_TEXT = frozenset({"", "na", "nan", "null", "n/a", "none"})


def sha256_of(path: str) -> str:
    """The file's SHA-256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Table:
    """The columns read from one CSV: ``numbers`` float64 (NaN where missing), ``times`` float64 seconds or
    plain numbers, ``codes`` int64 indexes into ``names[column]`` (for text columns), and ``lines``: each
    row's line in the file, so that later checks still name it."""

    path: str
    lines: np.ndarray
    numbers: dict[str, np.ndarray] = field(default_factory=dict)
    times: np.ndarray | None = None
    time_is_date: bool = False
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lines)

    def time_values(self) -> np.ndarray:
        """``times``, for a table read with a time column (ValueError otherwise: a caller's bug)."""
        if self.times is None:
            raise ValueError(f"{self.path} was read without a time column")
        return self.times

    def take(self, order: np.ndarray) -> Table:
        """The rows in ``order``."""
        return Table(
            self.path,
            self.lines[order],
            {k: v[order] for k, v in self.numbers.items()},
            None if self.times is None else self.times[order],
            self.time_is_date,
            {k: v[order] for k, v in self.codes.items()},
            self.names,
        )


def header_of(path: str) -> list[str]:
    """The column names of the CSV's first row."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), None)
    if header is None or not any(cell.strip() for cell in header):
        raise CSVFormatError(path, 1, None, "the file is empty; expected a header row naming the columns")
    return [cell.strip() for cell in header]


def read_table(
    path: str, numeric: list[str], *, text: tuple[str, ...] = (), time_col: str | None = None, missing: str = "refuse"
) -> Table:
    """Read ``numeric`` columns as numbers, ``text`` columns as codes, and ``time_col`` as numbers or ISO 8601
    dates, from the CSV at ``path`` (UTF-8, a header row first). Missing numeric cells become NaN unless
    ``missing == "refuse"``, which raises on the first one."""
    header = header_of(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        next(reader)
        wanted = [*numeric, *text, *([time_col] if time_col else [])]
        for name in wanted:
            if name not in header:
                raise CSVFormatError(path, 1, name, f"no such column in the header (it has: {', '.join(header)})")
        where = {name: header.index(name) for name in wanted}
        width = len(header)
        numbers = {name: array("d") for name in numeric}
        codes = {name: array("q") for name in text}
        index: dict[str, dict[str, int]] = {name: {} for name in text}
        times, lines = array("d"), array("q")
        kind = None  # of the time column: "number" or "date"
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line is no row
            if len(row) != width:
                raise CSVFormatError(path, line, None, f"{len(row)} fields where the header has {width}")
            for name in numeric:
                numbers[name].append(_number(path, line, name, row[where[name]], missing))
            for name in text:
                value = row[where[name]].strip()
                if value.lower() in _MISSING_TEXT:
                    raise CSVFormatError(path, line, name, "missing value (this column cannot be filled)")
                codes[name].append(index[name].setdefault(value, len(index[name])))
            if time_col:
                t, k = _time(path, line, time_col, row[where[time_col]])
                if kind is not None and k != kind:
                    raise CSVFormatError(path, line, time_col, f"a {k} where the rows above hold {kind}s")
                kind = k
                times.append(t)
            lines.append(line)
    if not lines:
        raise CSVFormatError(path, 2, None, "no data rows after the header")
    return Table(
        path,
        np.frombuffer(lines, np.int64).copy(),
        {k: np.frombuffer(v, np.float64).copy() for k, v in numbers.items()},
        np.frombuffer(times, np.float64).copy() if time_col else None,
        kind == "date",
        {k: np.frombuffer(v, np.int64).copy() for k, v in codes.items()},
        {k: list(v) for k, v in index.items()},
    )


def _number(path, line, column, cell, missing) -> float:
    try:
        value = float(cell)
    except ValueError:
        if cell.strip().lower() not in _MISSING_TEXT:
            raise CSVFormatError(path, line, column, f"{cell!r} is not a number") from None
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")):
        if missing == "refuse":
            raise CSVFormatError(
                path,
                line,
                column,
                f"missing value ({cell!r}); fill it, or pass --missing ffill "
                "or --missing interpolate to fill such cells",
            )
        return float("nan")
    return value


def _time(path, line, column, cell) -> tuple[float, str]:
    try:
        return float(cell), "number"
    except ValueError:
        pass
    try:
        return float(np.datetime64(cell.strip(), "s").astype(np.int64)), "date"
    except ValueError:
        raise CSVFormatError(path, line, column, f"{cell!r} is neither a number nor an ISO 8601 date") from None


def order_by_time(table: Table, column: str, groups: np.ndarray | None = None) -> tuple[Table, bool]:
    """The rows sorted by time (within each group, if given), and whether the file was out of order.
    Two rows with the same time (in the same group) are refused, naming both lines."""
    keys = (table.time_values(),) if groups is None else (table.time_values(), groups)
    order = np.lexsort(keys)  # stable: by group, then time
    moved = bool(np.any(order != np.arange(len(order))))
    out = table.take(order)
    times = out.time_values()
    same = times[1:] == times[:-1]
    if groups is not None:
        same &= groups[order][1:] == groups[order][:-1]
    if same.any():
        k = int(np.argmax(same))
        first, second = sorted((int(out.lines[k]), int(out.lines[k + 1])))
        raise CSVFormatError(
            table.path,
            second,
            column,
            f"the time {_show_time(out, k)} appears twice (lines "
            f"{first} and {second}{' of the same sequence' if groups is not None else ''})",
        )
    return out, moved


def _show_time(table: Table, k: int) -> str:
    t = table.time_values()[k]
    return str(np.datetime64(int(t), "s")) if table.time_is_date else f"{t:g}"


def fill_missing(values: np.ndarray, rule: str, starts: np.ndarray | None = None) -> int:
    """Fill the NaNs of ``values`` (N,) or (N, F) in place by ``rule``, within each segment that ``starts``
    opens (default: one segment); return how many cells were filled. ``ffill`` carries the last value
    forward, ``interpolate`` draws a straight line between neighbours; a segment's leading (or trailing)
    gap takes its first (or last) value. A segment with no value at all is left NaN for the caller."""
    if rule == "refuse":
        return 0
    v = values.reshape(len(values), -1)
    bounds = [0, *([] if starts is None else [int(s) for s in starts if 0 < s < len(v)]), len(v)]
    filled = 0
    for a, b in itertools.pairwise(bounds):
        for col in range(v.shape[1]):
            seg = v[a:b, col]
            bad = np.isnan(seg)
            if not bad.any() or bad.all():
                continue
            filled += int(bad.sum())
            known = np.flatnonzero(~bad)
            if rule == "interpolate":
                seg[bad] = np.interp(np.flatnonzero(bad), known, seg[known])
            else:  # ffill: the index of the last known value at or before each position
                last = np.maximum.accumulate(np.where(bad, -1, np.arange(len(seg))))
                last[last < 0] = known[0]
                seg[:] = seg[last]
    return filled
