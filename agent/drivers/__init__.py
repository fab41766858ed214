"""Readers: hardware in, :mod:`agent.drivers.events` out.

``build_readers(config, pan_key)`` makes one reader per profile entry; each runs
its own thread once ``start(emit)`` is called. See ``docs/readers.md``.
"""

from __future__ import annotations

from agent.drivers.base import Backoff, Debouncer, Reader, ThreadedReader
from agent.drivers.build import build_reader, build_readers
from agent.drivers.events import CardPresented, ReaderEvent, ReaderState, ReadFailed

__all__ = [
    "Backoff", "CardPresented", "Debouncer", "ReadFailed", "Reader", "ReaderEvent",
    "ReaderState", "ThreadedReader", "build_reader", "build_readers",
]
