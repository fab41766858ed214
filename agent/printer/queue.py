"""The print worker: one thread, a bounded queue, every step bounded in time.

A sale is committed before its receipt is queued; :meth:`PrintQueue.submit` never
blocks (a full queue refuses the job and says so), and whatever the printer does
— refuse the connection, stop answering mid-receipt, run out of paper — the job
fails with a reason, the state is reported (``agent.status``, an ``event``) and
the receipt can be printed again (``receipt.print``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.printer.device import PrinterError, Transport, query_status
from agent.printer.encode import EncodeOptions, PrinterFontMissing, drawer_kick, encode
from agent.printer.layout import Receipt

log = logging.getLogger("agent.printer")

MAX_QUEUED = 16
MAX_FAILED_KEPT = 20
# Bytes of one receipt at most (a receipt of images is about 60 kB).
MAX_JOB_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PrintJob:
    """One receipt to print; ``drawer``: open the cash drawer first."""

    receipt: Receipt
    kind: str = "sale"  # sale | reprint | text
    drawer: bool = False


class PrintQueue:
    """Prints jobs one after another on a transport made per job."""

    def __init__(self, transport: Callable[[], Transport], options: EncodeOptions, *,
                 drawer_pin: int | None = 2, max_queued: int = MAX_QUEUED,
                 poll_s: float = 30.0, on_state: Callable[[dict[str, Any]], None] = lambda _s: None,
                 describe: dict[str, Any] | None = None):
        self._transport = transport
        self._options = options
        self._drawer_pin = drawer_pin
        self._jobs: queue.Queue[PrintJob | None] = queue.Queue(max_queued)
        self._poll_s = poll_s
        self._on_state = on_state
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {**(describe or {}), "state": "unknown", "detail": None,
                                       "since": _now(), "printing": None, "last_job": None,
                                       "printed": 0, "failed": 0, "refused": 0}
        self._failed: deque[str] = deque(maxlen=MAX_FAILED_KEPT)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start the worker thread (a daemon thread: it never holds the agent up)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="clubterm-printer",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the worker to end after its current step; wait at most ``timeout_s``."""
        self._stop.set()
        try:
            self._jobs.put_nowait(None)
        except queue.Full:
            pass
        if self._thread is not None:
            self._thread.join(timeout_s)

    # ------------------------------------------------------------------ the seam

    def submit(self, job: PrintJob) -> bool:
        """Queue ``job`` without waiting; False (and reported) when the queue is full."""
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            with self._lock:
                self._state["refused"] += 1
            self._set(None, "the print queue is full (the printer is not printing); "
                            "print the receipt again later", job=job, result="refused")
            return False
        return True

    def status(self) -> dict[str, Any]:
        """The printer's state for ``agent.status`` (a copy)."""
        with self._lock:
            return {**self._state, "queued": self._jobs.qsize(),
                    "failed_sales": list(self._failed)}

    # ------------------------------------------------------------------ the worker

    def _set(self, state: str | None, detail: str | None, *, job: PrintJob | None = None,
             result: str | None = None) -> None:
        with self._lock:
            changed = state is not None and (state, detail) != (self._state["state"],
                                                               self._state["detail"])
            if state is not None and changed:
                self._state.update(state=state, detail=detail, since=_now())
            if job is not None and result is not None:
                self._state["last_job"] = {"sale_id": job.receipt.sale_id, "kind": job.kind,
                                           "result": result, "at": _now(),
                                           "error": detail if result != "printed" else None}
                if result == "printed":
                    self._state["printed"] += 1
                else:
                    self._state["failed"] += 1
                    if job.receipt.sale_id:
                        if job.receipt.sale_id in self._failed:
                            self._failed.remove(job.receipt.sale_id)
                        self._failed.append(job.receipt.sale_id)
                changed = True
            snapshot = {**self._state, "queued": self._jobs.qsize(),
                        "failed_sales": list(self._failed)}
        if changed:
            if result not in (None, "printed"):
                log.warning("receipt %s not printed: %s", job.receipt.sale_id if job else "-",
                            detail)
            self._on_state(snapshot)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=self._poll_s if self._poll_s > 0 else None)
            except queue.Empty:
                self._poll()
                continue
            if job is None:
                break
            with self._lock:
                self._state["printing"] = job.receipt.sale_id
            try:
                self._print(job)
            except PrinterError as exc:
                self._set(_state_for(exc), str(exc), job=job, result="failed")
            except (PrinterFontMissing, ValueError, OSError) as exc:
                self._set("error", str(exc)[:300], job=job, result="failed")
            except Exception as exc:
                # The worker outlives any one receipt (e.g. python-escpos raises
                # RuntimeError for a USB printer when pyusb is missing).
                log.exception("receipt %s: unexpected printer failure", job.receipt.sale_id)
                self._set("error", f"{type(exc).__name__}: {exc}"[:300], job=job,
                          result="failed")
            finally:
                with self._lock:
                    self._state["printing"] = None

    def _poll(self) -> None:
        try:
            transport = self._transport()
        except Exception as exc:
            self._set("error", f"{type(exc).__name__}: {exc}"[:300])
            return
        try:
            transport.open()
            status = query_status(transport)
            self._set(status.state, None)
        except PrinterError as exc:
            self._set(_state_for(exc), str(exc))
        except Exception as exc:
            self._set("error", f"{type(exc).__name__}: {exc}"[:300])
        finally:
            transport.close()

    def _print(self, job: PrintJob) -> None:
        started = time.monotonic()
        body = encode(job.receipt, self._options).body
        if len(body) > MAX_JOB_BYTES:
            raise ValueError(f"the receipt is too large to print ({len(body)} bytes)")
        transport = self._transport()
        try:
            transport.open()
            status = query_status(transport)
            if job.drawer and self._drawer_pin:
                # Before the receipt, and even when the paper is out: the change is due.
                transport.write(drawer_kick(self._drawer_pin))
            if status.state in ("paper_out", "cover_open", "offline"):
                raise PrinterError(_STATE_TEXT[status.state], status.state)
            transport.write(body)
            after = query_status(transport)  # a printer that hung mid-receipt says nothing
            if after.state in ("paper_out", "cover_open"):
                raise PrinterError(_STATE_TEXT[after.state] + " while printing", after.state)
        finally:
            transport.close()
        self._set(after.state, None, job=job, result="printed")
        log.info("receipt %s printed in %.2f s (%d bytes)", job.receipt.sale_id,
                 time.monotonic() - started, len(body))


_STATE_TEXT = {
    "paper_out": "the printer is out of paper",
    "cover_open": "the printer's cover is open",
    "offline": "the printer is offline",
}


def _state_for(exc: PrinterError) -> str:
    if exc.reason in ("paper_out", "cover_open"):
        return exc.reason
    return "offline" if exc.reason in ("refused", "timeout", "not_found", "offline") else "error"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
