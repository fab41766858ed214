"""The store parts the services take: every call a Protocol lists is the real Store's.

mypy checks the same thing statically (``agent/localapi/services/seams.py``); this
test also runs where mypy does not, and checks that every store call the services
make goes through one of the three parts.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from agent.localapi import ports
from agent.offline_queue import Store

PARTS = {"outbox": ports.Outbox, "members": ports.Members, "records": ports.Records}


def _calls(proto: type) -> list[str]:
    return [n for n, v in vars(proto).items() if inspect.isfunction(v) and not n.startswith("_")]


@pytest.mark.parametrize("part", sorted(PARTS))
def test_every_call_of_a_part_is_the_stores_with_the_same_parameters(part: str) -> None:
    proto = PARTS[part]
    for name in _calls(proto):
        real = inspect.signature(getattr(Store, name))
        wanted = inspect.signature(getattr(proto, name))
        assert list(real.parameters) == list(wanted.parameters), f"{part}.{name}"
        for p in wanted.parameters.values():
            assert real.parameters[p.name].kind == p.kind, f"{part}.{name}({p.name})"
    print(f"figure: {part} lists {len(_calls(proto))} store calls, all on Store")


def test_the_services_reach_the_store_only_through_its_parts() -> None:
    package = Path(__file__).parents[3] / "agent" / "localapi" / "services"
    source = "\n".join(p.read_text() for p in sorted(package.glob("*.py")))
    assert "self.store" not in source
    used = set(re.findall(r"self\.(outbox|members|records)\.([a-z_]+)", source))
    for part, name in sorted(used):
        assert name in _calls(PARTS[part]), f"{part}.{name} is not in the Protocol"
    listed = {(part, n) for part, proto in PARTS.items() for n in _calls(proto)}
    assert listed == used, f"listed but never called: {sorted(listed - used)}"
    print(f"figure: the services make {len(used)} distinct store calls, each through a part")
