"""Topic names of ``protocol.md`` (all under ``clubterm/v1/{club_id}``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """The topics one terminal publishes and subscribes to."""

    club_id: str
    terminal_id: str
    merchant_id: str

    @property
    def prefix(self) -> str:
        return f"clubterm/v1/{self.club_id}"

    def _terminal(self, leaf: str) -> str:
        return f"{self.prefix}/terminals/{self.terminal_id}/{leaf}"

    @property
    def events(self) -> str:
        return self._terminal("events")

    @property
    def acks(self) -> str:
        return self._terminal("acks")

    @property
    def status(self) -> str:
        return self._terminal("status")

    @property
    def commands(self) -> str:
        return self._terminal("commands")

    @property
    def command_results(self) -> str:
        return self._terminal("command-results")

    @property
    def rules(self) -> str:
        return f"{self.prefix}/merchants/{self.merchant_id}/rules"

    @property
    def staff(self) -> str:
        """The merchant's signed staff list (retained; ``docs/protocol/staff.md``)."""
        return f"{self.prefix}/merchants/{self.merchant_id}/staff"

    @property
    def catalogue(self) -> str:
        """The merchant's signed catalogue, whole (retained; ``docs/protocol/catalogue.md``)."""
        return f"{self.prefix}/merchants/{self.merchant_id}/catalogue"

    @property
    def catalogue_changes(self) -> str:
        """Signed catalogue change sets (not retained; ``docs/protocol/catalogue.md``)."""
        return f"{self.prefix}/merchants/{self.merchant_id}/catalogue/changes"

    @property
    def member_changes(self) -> str:
        return f"{self.prefix}/members/changes"

    def subscriptions(self) -> list[str]:
        """What a terminal subscribes to (QoS 1 each)."""
        return [self.acks, self.commands, self.rules, self.staff, self.member_changes,
                self.catalogue, self.catalogue_changes]
