"""Topic names of ``protocol.md`` (all under ``clubterm/v1/{club_id}``)."""

from __future__ import annotations

from dataclasses import dataclass

#: The club-wide member scope: every member, on ``members/changes`` (v1).
CLUB_SCOPE = "club"


def scope_changes_topic(club_id: str, scope: str) -> str:
    """The topic a scope's member change sets go to (``members/changes`` for the club)."""
    prefix = f"clubterm/v1/{club_id}/members"
    if scope == CLUB_SCOPE:
        return f"{prefix}/changes"
    kind, _, ident = scope.partition(":")
    return f"{prefix}/{'merchants' if kind == 'merchant' else 'groups'}/{ident}/changes"


@dataclass(frozen=True)
class Topics:
    """The topics one terminal publishes and subscribes to."""

    club_id: str
    terminal_id: str
    merchant_id: str
    #: Whose member changes this terminal follows (:func:`agent.config.parse_member_scope`'s form).
    member_scope: str = CLUB_SCOPE

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
        """The member changes of this terminal's scope (club-wide: v1's topic)."""
        return scope_changes_topic(self.club_id, self.member_scope)

    def subscriptions(self) -> list[str]:
        """What a terminal subscribes to (QoS 1 each)."""
        return [self.acks, self.commands, self.rules, self.staff, self.member_changes,
                self.catalogue, self.catalogue_changes]
