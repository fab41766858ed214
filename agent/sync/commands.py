"""The club's commands (``protocol.md``, "Commands"): recorded, run once, answered.

A command is recorded as running (durably) before it runs: if the agent dies
meanwhile, the next start answers it ``interrupted`` instead of running it again
(``docs/sync.md``, "Commands"). Each command type has one handler in
:data:`HANDLERS`; an unknown type is answered, never dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from agent.config import LOG_LEVELS
from agent.sync.actions import Action, Publish, SetLogLevel
from agent.sync.messages import Command
from agent.sync.ports import Commands

log = logging.getLogger("agent.sync")

Answer = dict[str, Any]


class CommandContext(Protocol):
    """What a handler may ask of the link's core."""

    def publish_status(self, out: list[Action]) -> None: ...


Handler = Callable[[Command, CommandContext, list[Action]], Answer]


def _ping(cmd: Command, ctx: CommandContext, out: list[Action]) -> Answer:
    return {"ok": True, "detail": "pong"}


def _send_status(cmd: Command, ctx: CommandContext, out: list[Action]) -> Answer:
    ctx.publish_status(out)
    return {"ok": True, "detail": "status sent"}


def _set_log_level(cmd: Command, ctx: CommandContext, out: list[Action]) -> Answer:
    level = cmd.args.get("level")
    if not isinstance(level, str) or level.lower() not in LOG_LEVELS:
        return {"ok": False, "detail": f"level must be one of {', '.join(LOG_LEVELS)}"}
    out.append(SetLogLevel(level.upper()))
    return {"ok": True, "detail": f"log level is now {level.lower()}"}


def _resync_without_central(cmd: Command, ctx: CommandContext, out: list[Action]) -> Answer:
    # With a central_url the snapshot answers it (CommandRunner.on_command).
    return {"ok": False, "detail": "no central_url is configured"}


#: One handler per command type.
HANDLERS: dict[str, Handler] = {
    "ping": _ping,
    "send_status": _send_status,
    "set_log_level": _set_log_level,
    "resync_members": _resync_without_central,
}


def encode_result(result: dict[str, Any]) -> bytes:
    """A command result as published."""
    return json.dumps(result).encode("utf-8")


class CommandRunner:
    """Runs commands once and publishes their results on ``results_topic``."""

    def __init__(self, store: Commands, results_topic: str, *, snapshots: bool):
        self.store = store
        self.results_topic = results_topic
        self.snapshots = snapshots
        # resync_members commands waiting for the next full snapshot / the running one.
        self.resync_waiting: list[str] = []
        self.resync_running: list[str] = []

    def interrupted(self) -> list[dict[str, Any]]:
        """Commands left running by an agent that died, now answered ``interrupted``."""
        results = self.store.interrupt_running_commands()
        for result in results:
            log.warning("command %s was running when the agent stopped: answered "
                        "interrupted", result["id"])
        return results

    def publish(self, result: dict[str, Any], out: list[Action]) -> None:
        out.append(Publish(self.results_topic, encode_result(result)))

    def answer(self, command_id: str, answer: Answer, out: list[Action]) -> None:
        """Record the final result (``state`` done or failed), then send it."""
        result = {"id": command_id, "state": "done" if answer.get("ok") else "failed", **answer}
        self.publish(self.store.save_command_result(command_id, result), out)

    def on_command(self, cmd: Command, ctx: CommandContext, out: list[Action]) -> bool:
        """Handle ``cmd``; True when it waits for a full member snapshot."""
        prior = self.store.begin_command(cmd.id, cmd.type)
        if prior is not None:
            if prior.get("state") == "running":
                log.info("command %s is running; answered when it is done", cmd.id)
                return False
            log.info("command %s was answered before; sending the same answer", cmd.id)
            self.publish(prior, out)
            return False
        log.info("command %s from the club: %s", cmd.id, cmd.type)
        if cmd.type == "resync_members" and self.snapshots:
            # Answered when the snapshot is in: the fetch runs off the worker.
            if cmd.id in self.resync_waiting + self.resync_running:
                return False
            self.resync_waiting.append(cmd.id)
            return True
        handler = HANDLERS.get(cmd.type)
        try:
            answer = (handler(cmd, ctx, out) if handler is not None else
                      {"ok": False, "detail": f"unknown command type {cmd.type!r}"})
        except Exception as exc:  # a failed command is answered, not left running
            log.exception("command %s (%s) failed", cmd.id, cmd.type)
            answer = {"ok": False, "detail": f"the command failed: {exc}"}
        self.answer(cmd.id, answer, out)
        return False

    def snapshot_started(self, full: bool) -> None:
        if full:
            self.resync_running, self.resync_waiting = self.resync_waiting, []

    def snapshot_finished(self, answer: Answer, out: list[Action]) -> None:
        waiters, self.resync_running = self.resync_running, []
        for command_id in waiters:
            self.answer(command_id, answer, out)
