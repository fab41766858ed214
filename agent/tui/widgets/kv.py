"""Two-column label/value grids (quote, receipt, report), mirrored for RTL."""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table

from agent.tui.i18n import current, ordered


def kv_table() -> Table:
    """A borderless grid: label (wraps) and value (right-aligned, never wraps).

    In a right-to-left locale the value column is on the left and labels are
    right-aligned; add rows with :func:`agent.tui.i18n.ordered`.
    """
    table = Table.grid(expand=True, padding=(0, 1))
    if current().rtl and current().visual_bidi:
        table.add_column(justify="left", no_wrap=True)
        table.add_column(ratio=1, justify="right", overflow="fold")
    else:
        table.add_column(ratio=1, overflow="fold")
        table.add_column(justify="right", no_wrap=True)
    return table


def kv_row(table: Table, label: RenderableType, value: RenderableType = "") -> None:
    """Add a label/value row in the locale's order."""
    table.add_row(*ordered([label, value]))
