"""The store's parts the services take, checked against the real ``Store`` by mypy.

:class:`~agent.localapi.services.Services` takes ``outbox=``, ``members=`` and
``records=`` typed by the Protocols in :mod:`agent.localapi.ports`; the daemon
passes ``store.outbox``, ``store.members`` and ``store.records``. The function below
only type-checks (``mypy
--strict`` runs on this package): if the store drops, renames or retypes a call the
services make, mypy fails here, naming the Protocol and the call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.localapi.ports import Catalogue, Members, Outbox, Records
    from agent.offline_queue import Store

    def _store_is_every_part(store: Store) -> tuple[Outbox, Members, Records, Catalogue]:
        outbox: Outbox = store.outbox
        members: Members = store.members
        records: Records = store.records
        catalogue: Catalogue = store.catalogue
        return outbox, members, records, catalogue
