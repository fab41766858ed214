"""The link to the club (``protocol.md``): MQTT sync with acks and retries, rule
bundles, member updates and commands.

- :class:`ClubLink` — the real link (paho-mqtt 2.x, requests);
  ``ClubLink(config, store, bundle_state, on_event)``, ``start()``, ``stop()``,
  ``state() -> LinkState``, ``wake()``, ``set_readers()``, ``resync_members()``.
- :class:`FakeClubLink` — the same interface in memory, for the daemon's and the
  UI's tests.
"""

from agent.sync.fake import FakeClubLink
from agent.sync.link import ClubLink, LinkState, LinkTuning

__all__ = ["ClubLink", "FakeClubLink", "LinkState", "LinkTuning"]
