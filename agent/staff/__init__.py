"""Staff from the club: the permissions model and the signed staff list.

- :mod:`agent.staff.permissions`: features, actions, the default groups that
  stand for the roles cashier, manager and technician, and the union of a
  person's groups.
- :mod:`agent.staff.staff_list`: the signed, versioned staff list a club
  publishes per merchant (``docs/protocol/staff.md``), parsed and checked.

Pure functions over plain data; the store keeps what is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.errors import ConfigError


def offline_only(raw_config: Mapping[str, Any]) -> bool:
    """``[terminal] offline_only`` (default false): staff are managed at this box.

    On such a box a club staff list never deactivates local staff and a manager
    may create staff at the terminal even while a list is in force
    (``docs/protocol/staff.md``, "Local staff").
    """
    terminal = raw_config.get("terminal", {}) if isinstance(raw_config, Mapping) else {}
    value = terminal.get("offline_only", False) if isinstance(terminal, Mapping) else False
    if not isinstance(value, bool):
        raise ConfigError("must be true or false", key="terminal.offline_only")
    return value
