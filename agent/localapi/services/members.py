"""Members at the till: identify, enrol, search, profile and card links.

Every identifier a client sends is checked (``params._checked_token``): a bank card
number typed as a code or phone is refused, never stored.
"""

from __future__ import annotations

import uuid
from typing import Any

from agent.errors import ApiError
from agent.localapi import CONFLICT, INVALID_PARAMS, UNKNOWN_MEMBER
from agent.localapi.services.core import Caller, balance_holder
from agent.localapi.services.packages import PackageMethods
from agent.localapi.services.params import Params, _checked_token, _p, _text
from agent.localapi.services.sales import SaleMethods
from agent.staff import permissions as perm

MEMBER_SEARCH_MAX = 20
PROFILE_SALES = 5


class MemberMethods(SaleMethods, PackageMethods):
    """``member.*`` (a member's profile shows the last sales and, 1.3, the packages
    as ``package.list`` does: a SaleMethods and a PackageMethods)."""

    async def member_identify(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``member.identify`` by token, phone or code."""
        token = self._identifier_of(params)
        if token.startswith("code:"):
            token = await self._code_as_stored(token)
        member = await self._member_for(token)
        # The token too: a phone or code becomes a token only here, and the client
        # quotes with it.
        return {**(await self._summary(member, token)), "token": token}

    async def member_enrol(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``member.enrol``: a new member ``local:<uuid>`` until the club answers."""
        session = await self._session(params, perm.ENROL)
        name = _text(params, "name", max_len=100)
        phone = _text(params, "phone", max_len=40)
        assert phone is not None
        tel = self._identifier_of({"phone": phone})
        identifiers = [tel]
        token = params.get("token")
        if token is not None:
            identifiers.append(_checked_token(token))
        if params.get("nid") is not None:
            # (1.3) Optional national id: kept as its keyed ``nid:`` token only.
            identifiers.append(self._nid_token_of(params.get("nid")))
        for ident in identifiers:
            if await self.lost_card(ident) is not None:
                raise ApiError(CONFLICT, "This card was reported lost; it cannot be used for a "
                               "new member. Keep it and give the member a new card.",
                               {"reason": "card_lost", "identifier_kind": "card"})
            holder = await self.db.read(self.members.lookup, ident)
            if holder is not None:
                what = {"tel": "phone number", "nid": "national id"}.get(
                    ident.split(":", 1)[0], "card")
                raise ApiError(CONFLICT, f"This {what} already belongs to {holder.get('name')}.",
                               {"member_id": holder.get("member_id"),
                                "identifier_kind": ident.split(":", 1)[0]})
        referred_by = _text(params, "referred_by", required=False, max_len=100)
        if referred_by and referred_by.startswith("local:"):
            # A member enrolled here: "local:" and a UUID, nothing else is kept.
            try:
                uuid.UUID(referred_by.removeprefix("local:"))
            except ValueError as exc:
                raise ApiError(UNKNOWN_MEMBER, "The referring member was not found.") from exc
        elif referred_by and await self.db.read(self.members.member, referred_by) is None:
            raise ApiError(UNKNOWN_MEMBER, "The referring member was not found.")
        member_id = f"local:{uuid.uuid4()}"
        body = {"member_id": member_id, "name": name, "identifiers": identifiers,
                "referred_by": referred_by}
        await self._append("member_enrol", body, session.staff_id)
        return {"member_id": member_id}


    async def member_search(self, params: Params, conn: Caller | None) -> list[dict[str, Any]]:
        """``member.search`` (cashier, manager): members by phone, club code or a part
        of the name, at most ``limit`` (1–20, default 10)."""
        await self._session(params, perm.SALE_VIEW)
        query = _text(params, "query", max_len=80)
        assert query is not None
        limit = _p(params, "limit", int, required=False, default=10)
        if not 1 <= limit <= MEMBER_SEARCH_MAX:
            raise ApiError(INVALID_PARAMS, f"The limit must be 1 to {MEMBER_SEARCH_MAX}.",
                           {"param": "limit"})
        found: dict[str, dict[str, Any]] = {}
        keys = ["code"] + (["phone"] if sum(c.isdigit() for c in query) >= 5 else [])
        if self.view.nid_token is not None and sum(c.isdigit() for c in query) >= 4:
            keys.append("nid")  # (1.3) a national id typed in the search field
        for key in keys:
            try:
                token = self._identifier_of({key: query})
            except ApiError:
                continue
            holder = await self.db.read(self.members.lookup, token)
            if holder is not None:
                found.setdefault(str(holder["member_id"]), holder)
        if len(query) >= 2:
            for record in await self.db.read(self.members.find_members, query, limit):
                found.setdefault(str(record["member_id"]), record)
        return [{"member_id": r["member_id"], "name": r.get("name"), "tier": r.get("tier"),
                 "status": r.get("status")} for r in list(found.values())[:limit]]

    async def member_profile(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``member.profile`` (cashier, manager): the member summary with usable
        balances, stats, linked cards, the last sales at this terminal and (1.3) the
        member's packages (``package.list``'s rows; unreadable entries left out)."""
        session = await self._session(params, perm.SALE_VIEW)
        member_id = _text(params, "member_id", max_len=100)
        assert member_id is not None
        record = await self.db.read(self.members.member_view, member_id)
        if record is None:
            raise ApiError(UNKNOWN_MEMBER, "No member has this id.")
        if balance_holder(record) != member_id:  # (1.3) the family pool's balances
            pool = await self.db.read(self.members.member, balance_holder(record))
            if pool is not None and pool.get("holder") == "pool":
                record["balances"] = await self.db.read(self.members.usable_balances,
                                                        balance_holder(record))
            else:
                record.pop("pool", None)
        cards = self._card_rows(record.get("identifiers"))
        sales, _ = await self._recent_sales(session, None, PROFILE_SALES, "", member_id)
        return {**self._summary_from(record, None), "stats": record.get("stats") or {},
                "cards": cards, "recent_sales": sales,
                "lost_cards": self._card_rows(record.get("lost_identifiers")),
                "has_nid": any(str(t).startswith("nid:")
                               for t in record.get("identifiers") or []),
                "enrolment": await self._enrolment(member_id, record),
                "packages": await self._packages_of(record)}

    def _card_rows(self, tokens: object) -> list[dict[str, Any]]:
        """The cards among ``tokens``, masked (no phone, no national id)."""
        cards = []
        for token in tokens if isinstance(tokens, list) else []:
            kind = str(token).split(":", 1)[0]
            if kind in ("tel", "nid") or not isinstance(token, str):
                continue
            masked = self._recent_cards.get(token, (None, None))[0]
            cards.append({"token": token, "kind": kind,
                          "label": masked or f"{kind.upper()} …{str(token)[-6:]}"})
        return cards

    async def _enrolment(self, member_id: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """The member's enrolment at this terminal (what ``event.correct`` corrects),
        with the phone as recorded now, or None (enrolled elsewhere, or pruned)."""
        replaced = [str(r) for r in record.get("replaces") or [] if isinstance(r, str)]
        entry = await self.db.read(self.outbox.enrolment_of, [member_id, *replaced])
        if entry is None:
            return None
        phones = [str(t) for t in record.get("identifiers") or [] if str(t).startswith("tel:")]
        return {"event_id": entry.id, "at": entry.at,
                "phone": phones[0].removeprefix("tel:") if phones else None}

    async def member_card_link(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``member.card_link`` (manager): link a card to a member (protocol
        ``card_link``); with ``replaces`` (a lost card's token) the old card stops
        finding the member at this terminal at once."""
        session = await self._session(params, perm.CARD_LINK)
        member_id = _text(params, "member_id", max_len=100)
        assert member_id is not None
        token = _checked_token(params.get("token"))
        replaced = params.get("replaces")
        if token.startswith(("tel:", "nid:")):
            raise ApiError(INVALID_PARAMS, "Only a card, tag or printed code can be linked "
                           "here; a phone or national id is changed at enrolment.",
                           {"param": "token", "reason": "not_a_card"})
        member = await self.db.read(self.members.member, member_id)
        if member is None:
            raise ApiError(UNKNOWN_MEMBER, "No member has this id.")
        body: dict[str, Any] = {"member_id": member_id, "identifier": token}
        if replaced is not None:
            # (1.1) The lost card: blocked at this terminal at once and at the club.
            body["replaces"] = _checked_token(replaced, "replaces")
        # The card's holder, a lost card and ``replaces`` are checked in the append's
        # write transaction (MemberCache.check_link_in_tx): of two tills linking one
        # card at once, the second gets a clear refusal.
        stored = await self._append("card_link", body, session.staff_id)
        return {"event_id": stored.id, "member_id": member_id,
                "replaced": body.get("replaces")}

