"""The link to the club (``protocol.md``): MQTT sync with acks and retries, rule
bundles, member updates and commands.

- :class:`ClubLink` — the real link (``agent.sync.link``: a worker thread around the
  pure :class:`agent.sync.core.LinkCore` and the :class:`agent.sync.session.MqttSession`);
  ``ClubLink(config, store_or_parts, bundle_state, on_event)``, ``start()``, ``stop()``,
  ``state() -> LinkState``, ``wake()``, ``set_readers()``, ``resync_members()``.
- :class:`LinkParts` — the store parts it uses, one Protocol each (``agent.sync.ports``).
- :class:`FakeClubLink` — the same interface in memory, for the daemon's and the
  UI's tests.
"""

from agent.sync.fake import FakeClubLink
from agent.sync.link import ClubLink, LinkParts
from agent.sync.tuning import LinkState, LinkTuning

__all__ = ["ClubLink", "FakeClubLink", "LinkParts", "LinkState", "LinkTuning"]
