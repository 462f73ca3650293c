"""Score tables for the terminal (rich): one column per joint while that fits, one row per joint when not.

A table of per-joint scores with a column per joint reads well for MPII's 8 columns, but a skeleton with
many joints (COCO's 17, a custom set) squeezed into 80 columns truncates every cell to ``1…``. Such a
table is turned on its side: joints become rows and the score sets (``PCKh@0.5``, ``PCKh@0.1``) columns.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table


def score_table(
    rows: Mapping[str, Mapping[str, float]],
    title: str | None = None,
    width: int | None = None,
    digits: int = 2,
) -> Table:
    """A rich table of ``rows`` (score set -> column -> value), as wide as fits ``width``, else transposed.

    Args:
        rows: e.g. ``{"PCKh@0.5": {"Head": 97.1, ..., "Total": 90.2}, "PCKh@0.1": {"Total": 40.3}}``;
            a column missing from a row is left blank. A single set named ``""`` gets no name column.
        title: the table's title.
        width: the terminal's width in characters (default: that of the terminal, else 80).
        digits: decimals shown.

    Returns:
        One row per score set and one column per joint when that table fits ``width`` without wrapping
        or truncating a cell; otherwise one row per joint and one column per score set.
    """
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    width = width or shutil.get_terminal_size((80, 24)).columns

    def cell(row: Mapping[str, float], column: str) -> str:
        return f"{row[column]:.{digits}f}" if column in row else ""

    named = list(rows) != [""]
    wide = _table(title, columns, [(name, [cell(row, c) for c in columns]) for name, row in rows.items()], named)
    if natural_width(wide) <= width:
        return wide
    return _table(title, list(rows), [(c, [cell(row, c) for row in rows.values()]) for c in columns])


def natural_width(table: Table) -> int:
    """Characters ``table`` takes when no cell is wrapped or cut."""
    console = Console(file=io.StringIO(), width=1_000_000)
    return Measurement.get(console, console.options, table).maximum


def _table(title: str | None, columns: list[str], rows: list[tuple[str, list[str]]], named: bool = True) -> Table:
    """A table with ``columns`` (right-aligned numbers), after a first column of row names when ``named``."""
    table = Table(title=title)
    if named:
        table.add_column("")
    for c in columns:
        table.add_column(c, justify="right")
    for name, cells in rows:
        table.add_row(*([name] if named else []), *cells)
    return table
