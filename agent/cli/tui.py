"""`clubterm tui`: not built yet."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `tui` command (nothing yet)."""
