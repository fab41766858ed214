"""The store's parts the services take, checked against the real ``Store`` by mypy.

:class:`~agent.localapi.services.Services` takes ``outbox=``, ``members=`` and
``records=`` typed by the Protocols in :mod:`agent.localapi.ports`. Today one
``Store`` object is all three; the function below only type-checks (``mypy
--strict`` runs on this package): if the store drops, renames or retypes a call the
services make, mypy fails here, naming the Protocol and the call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.localapi.ports import Members, Outbox, Records
    from agent.offline_queue import Store

    def _store_is_every_part(store: Store) -> tuple[Outbox, Members, Records]:
        outbox: Outbox = store
        members: Members = store
        records: Records = store
        return outbox, members, records
