"""Members: find a member and see their profile (balances, visits, cards), replace a
lost card (a manager), enrol a new member (name, phone, card, referrer)."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from rich.console import Group
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from agent.errors import ApiError
from agent.tui.basket import scanned_product
from agent.tui.i18n import (
    N_,
    agent_date,
    ascii_digits,
    current,
    display,
    fill,
    filln,
    isolate,
    money,
    number,
    plain,
    tr,
)
from agent.tui.labels import credit_name, tier_name
from agent.tui.messages import CardRead
from agent.tui.screens.adjust_dialog import AdjustDialog, kind_name
from agent.tui.screens.base import ClubScreen
from agent.tui.screens.checkin_dialog import STATES as PACKAGE_STATES
from agent.tui.screens.correction_dialog import CorrectionDialog
from agent.tui.widgets.bidi import BidiText, tr_block
from agent.tui.widgets.member_progress import progress_lines

STATUS_NAMES = {"active": N_("active"), "blocked": N_("blocked"), "lost_card": N_("card lost")}
#: (1.3) Packages the profile lists (usable ones first); the rest are counted. A
#: profile narrower than :data:`NARROW_PROFILE` cells (60 columns) lists one and no
#: freeze dates (the state says "frozen"), one lower than :data:`TALL_PROFILE` rows
#: (80x24) two.
PACKAGES_SHOWN = 3
NARROW_PROFILE = 30
TALL_PROFILE = 24


def package_lines(packages: object, today: date | None = None,
                  shown: int = PACKAGES_SHOWN) -> list[BidiText]:
    """(1.3) The member's packages (``member.profile``'s ``packages``): a heading, then
    for each of the first ``shown`` (usable ones first) its name and state,
    visits left and expiry, and its latest freeze unless it ended before ``today`` (a
    past freeze is already in the expiry; none when one is shown: a narrow profile);
    then how many more packages there are."""
    rows = [p for p in packages if isinstance(p, dict)] if isinstance(packages, list) else []
    if not rows:
        return []
    rows.sort(key=lambda p: not p.get("usable"))  # stable: the agent's order otherwise
    lines = [BidiText(fill("Packages:"))]
    for pkg in rows[:shown]:
        style = "" if pkg.get("usable") else "dim"
        state = str(pkg.get("state"))
        word = current().gettext(PACKAGE_STATES[state]) if state in PACKAGE_STATES else state
        name = str(pkg.get("name") or pkg.get("sku") or pkg.get("package_id"))[:40]
        lines.append(BidiText(fill("{name} · {state}", name=name, state=word), style))
        total, left = pkg.get("visits_total"), pkg.get("visits_left")
        visits = fill("unlimited") if not isinstance(total, int) else \
            fill("{left}/{total} left", left=number(int(left or 0)), total=number(total))
        if state == "in_grace":
            when = fill("grace: {days} days", days=number(int(pkg.get("grace_left") or 0)))
        elif state == "not_started":
            when = fill("starts {date}", date=agent_date(pkg.get("starts")))
        elif state == "expired":
            when = fill("ended {date}", date=agent_date(pkg.get("expires")))
        else:
            when = fill("until {date}", date=agent_date(pkg.get("expires")))
        lines.append(BidiText(f"  {visits} · {when}", style))
        spans = sorted((f for f in pkg.get("frozen") or [] if isinstance(f, dict)),
                       key=lambda f: str(f.get("from")))
        # The latest freeze unless over (already in the expiry); earlier ones counted.
        if shown > 1 and spans and (today is None
                                    or str(spans[-1].get("until")) >= today.isoformat()):
            last = {"start": agent_date(spans[-1].get("from")),
                    "end": agent_date(spans[-1].get("until"))}
            lines.append(BidiText("  " + (
                fill("frozen {start} – {end}", **last) if len(spans) == 1 else
                filln("frozen {start} – {end}, and {n} more time",
                      "frozen {start} – {end}, and {n} more times", len(spans) - 1, **last)),
                "dim"))
    if len(rows) > shown:
        lines.append(BidiText(filln("and {n} more package", "and {n} more packages",
                                    len(rows) - shown), "dim"))
    return lines


def profile_text(profile: dict[str, Any] | None, fmt: Any, today: date | None = None,
                 packages_shown: int = PACKAGES_SHOWN) -> Group | BidiText:
    """A member's profile: status, balances, visits, packages, cards, last sales here.

    Each line wraps on its own in reading order, right to left too (:class:`BidiText`).
    """
    if profile is None:
        return tr_block("Find a member: phone, club code or name, Enter; or tap their card.",
                        style="dim")
    tier = profile.get("tier")
    name = str(plain(str(profile.get("name") or "?")))
    lines = [BidiText(fill("{name} · {tier}", name=profile.get("name") or "?",
                           tier=tier_name(str(tier))) if tier else name, "bold")]
    status = str(profile.get("status") or "")
    lines.append(BidiText(fill("Status: {status}", status=current().gettext(STATUS_NAMES[status])
                               if status in STATUS_NAMES else status)))
    for kind, amount in (profile.get("balances") or {}).items():
        if kind == "points":
            lines.append(BidiText(fill("Points: {n}", n=number(int(amount)))))
        elif kind.startswith("credit."):
            lines.append(BidiText(fill("{kind}: {amount}", kind=credit_name(kind),
                                       amount=fmt(int(amount)))))
        elif kind.startswith("units."):  # (1.3) non-money balances: car-wash units …
            lines.append(BidiText(fill("{kind}: {amount}", kind=kind_name(kind),
                                       amount=number(int(amount)))))
    stats = profile.get("stats") or {}
    if stats.get("purchase_count") is not None:
        lines.append(BidiText(fill("Visits: {n}, last {day}",
                                   n=number(int(stats["purchase_count"])),
                                   day=str(stats.get("last_purchase") or "—"))))
    lines.extend(progress_lines(profile, fmt))  # (1.3) next tier, referrals
    lines.extend(package_lines(profile.get("packages"), today,  # (1.3) visit packages
                               packages_shown))
    for card in profile.get("cards") or []:
        lines.append(BidiText(fill("Card {masked}", masked=str(card.get("label")))))
    for card in profile.get("lost_cards") or []:
        lines.append(BidiText(fill("Lost card {masked} (blocked)",
                                   masked=str(card.get("label"))), "dim"))
    sales = profile.get("recent_sales") or []
    if sales:
        lines.append(BidiText(fill("Last sales here:")))
        for sale in sales:
            lines.append(BidiText(f"  {sale.get('receipt_no')}  {str(sale.get('at'))[:10]}  "
                                  f"{isolate(fmt(int(sale.get('payable') or 0)))}"
                                  + ("  ↩" if sale.get("refund") else "")))
    return Group(*lines)

PHONE_CHARS = set("+0123456789 -")


class MembersScreen(ClubScreen):
    """Enrolment: the member gets ``local:<uuid>`` until the club answers."""

    CSS_PATH = "members.tcss"
    MODE = "members"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f8", "enrol", N_("Enrol"), priority=True),
        Binding("ctrl+b", "unlink", N_("Remove card")),
        Binding("ctrl+n", "clear", N_("Clear")),
        Binding("ctrl+l", "replace_card", N_("Card lost")),
        Binding("ctrl+o", "link_card", N_("Link a card")),
        Binding("ctrl+t", "correct", N_("Correct")),
        Binding("ctrl+g", "adjust", N_("Adjust balance")),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.card_token: str | None = None
        self.card_label: str | None = None
        self.referrer_id: str | None = None
        self.profile: dict[str, Any] | None = None
        # The card the member was found by (a lost card to replace), and whether
        # the next unknown card tapped is the replacement.
        self.found_by: str | None = None
        self.replacing = False
        # (1.3) The lost card chosen to replace (Ctrl+L again: the next of the
        # member's cards), and whether the next card is linked as a second card.
        self.lost_token: str | None = None
        self.linking = False
        self._results: list[dict[str, Any]] = []
        self._corrected = ""  # the member whose enrolment was just corrected

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="members-body"):
            with Vertical(id="members-left"):
                yield from self._enrol_form()
            with Vertical(id="members-right"):
                with Horizontal(classes="field"):
                    yield Label(tr("Find"), classes="field-label")
                    yield Input(id="member-find", compact=True, max_length=80,
                                placeholder=tr("phone, code, national id or name"))
                yield Static(id="member-profile")

    def _enrol_form(self) -> ComposeResult:
        yield Static(tr("Enrol a new member"), classes="title")
        with Horizontal(classes="field"):
            yield Label(tr("Name"), classes="field-label")
            yield Input(id="enrol-name", compact=True, max_length=80,
                        placeholder=tr("first and last name"))
        with Horizontal(classes="field"):
            yield Label(tr("Phone"), classes="field-label")
            yield Input(
                id="enrol-phone", compact=True, placeholder=tr("e.g. 0912 123 4567"), max_length=20
            )
        with Horizontal(classes="field"):
            yield Label(tr("Card"), classes="field-label")
            yield Static(id="enrol-card", classes="value")
        with Horizontal(classes="field"):
            yield Label(tr("Referred by"), classes="field-label")
            yield Input(
                id="enrol-referrer",
                compact=True,
                placeholder=tr("optional: their phone or club code, Enter"),
            )
        yield Static(id="enrol-referrer-name", classes="hint")
        with Horizontal(classes="field"):
            yield Label(tr("National id"), classes="field-label")
            yield Input(id="enrol-nid", compact=True, max_length=40,
                        placeholder=tr("optional: national id number"))
        yield Static(
            tr_block("Tap the new card on the reader to link it (optional). F8 enrols."),
            classes="hint"
        )
        yield Static(id="enrol-done")

    def on_mount(self) -> None:
        self._show_card()
        self._show_profile()
        self.query_one("#enrol-name", Input).focus()

    def _show_profile(self) -> None:
        status = self.club_app.agent_status
        widget = self.query_one("#member-profile", Static)
        shown = 1 if widget.size.width < NARROW_PROFILE else \
            2 if widget.size.height < TALL_PROFILE else PACKAGES_SHOWN
        widget.update(profile_text(
            self.profile, lambda n: money(n, status.currency, status.minor_units),
            self.club_app.now().date(), shown))

    def on_resize(self) -> None:
        if self.profile is not None:  # how many packages fit depends on the width
            self._show_profile()

    def take_card(self, token: str, masked: str | None) -> None:
        """Enrol with the unknown card the sale screen read (Ctrl+E there)."""
        self.action_clear()
        self.card_token = token
        self.card_label = masked or tr("{kind} card {tail}", kind=token.split(":", 1)[0].upper(),
                                       tail=token[-6:])
        self._show_card()
        self.say(tr("New card: type the name and phone, then F8."), "ok")

    def _show_card(self) -> None:
        text = self.card_label or tr("none — tap a card to link it")
        self.query_one("#enrol-card", Static).update(text)

    def handle_card(self, message: CardRead) -> None:
        if scanned_product(message.token) is not None:
            self.say(tr("That is a product barcode, not a card."), "error")
            return
        if message.event.get("lost"):
            # (1.3) A card reported lost: refused as such, never linked again.
            self.say(tr("This card was reported lost ({name}); it gives no benefits and "
                        "cannot be linked.", name=message.event["lost"].get("name") or ""),
                     "error")
            return
        if (self.replacing or self.linking) and self.profile is not None:
            holder = message.event.get("member")
            if holder and holder.get("member_id") != self.profile.get("member_id"):
                self.say(tr("This card already belongs to {name}; it cannot be linked.",
                            name=holder.get("name") or ""), "error")
                return
            if not holder:
                self._link_new_card(message.token)
                return
        if message.event.get("member"):
            # A member's card: show who it is (a card tapped to enrol is refused).
            member = message.event["member"]
            self.found_by = message.token
            self.call_api("member.profile", {"member_id": member["member_id"]},
                          on_done=self.done_profile, session=True)
            self.say(tr("This card belongs to {name}.", name=member.get("name", "")), "info")
            return
        self.card_token = message.token
        kind = message.token.split(":", 1)[0]
        self.card_label = message.event.get("masked") or tr(
            "{kind} card {tail}", kind=kind.upper(), tail=message.token[-6:]
        )
        self._show_card()
        self.say(tr("Card read; it will be linked on enrolment."), "ok")

    def action_unlink(self) -> None:
        """Enrol without a card."""
        self.card_token = None
        self.card_label = None
        self._show_card()

    def action_clear(self) -> None:
        """Empty the form."""
        for name in ("enrol-name", "enrol-phone", "enrol-nid", "enrol-referrer"):
            self.query_one(f"#{name}", Input).value = ""
        self.referrer_id = None
        self.query_one("#enrol-referrer-name", Static).update("")
        self.action_unlink()
        self.query_one("#enrol-name", Input).focus()

    # ------------------------------------------------------------ find, profile

    def _find(self, text: str) -> None:
        text = ascii_digits(text.strip())
        if text:
            self.call_api("member.search", {"query": text}, on_done=self.done_search, session=True)

    def done_search(self, result: list[dict[str, Any]]) -> None:
        self._results = list(result)
        if not result:
            self.say(tr("No member found."), "error")
            return
        self.found_by = None
        self.call_api("member.profile", {"member_id": result[0]["member_id"]},
                      on_done=self.done_profile, session=True)
        if len(result) > 1:
            others = ", ".join(display(str(r.get("name"))) for r in result[1:5])
            self.say(tr("{n} found; showing the first. Others: {names}",
                        n=number(len(result)), names=others), "info")

    def done_profile(self, result: dict[str, Any]) -> None:
        # A profile answer that arrives after Ctrl+L (the card tap that found the
        # member asked for it) must not cancel replacing that same member's card.
        same = (self.profile is not None
                and self.profile.get("member_id") == result.get("member_id"))
        self.profile = result
        if not same:
            self.replacing = self.linking = False
        self._show_profile()

    def action_replace_card(self) -> None:
        """Replace the shown member's lost card: the next card tapped is linked."""
        staff = self.club_app.staff
        if staff is None or not staff.is_manager:
            self.say(tr("Only a manager can replace a card."), "error")
            return
        if self.profile is None:
            self.say(tr("Find the member first."), "error")
            return
        cards = [c for c in self.profile.get("cards") or [] if c.get("token")]
        if not cards:
            self.say(tr("{name} has no card to report lost; Ctrl+O links a card.",
                        name=self.profile.get("name") or ""), "error")
            return
        tokens = [str(c["token"]) for c in cards]
        if not self.replacing:
            # The card that found the member first (the one tapped), else the first.
            at = tokens.index(self.found_by) if self.found_by in tokens else 0
        elif self.lost_token in tokens and tokens.index(self.lost_token) + 1 < len(tokens):
            at = tokens.index(self.lost_token) + 1
        else:
            self.replacing = False
            self.lost_token = None
            self.say(tr("Card replacement cancelled."), "info")
            return
        self.replacing, self.linking = True, False
        self.lost_token = tokens[at]
        self.say(tr("Lost: {card}. Tap the new card for {name}; Ctrl+L: another card.",
                    card=str(cards[at].get("label")), name=self.profile.get("name") or ""),
                 "info")

    def action_link_card(self) -> None:
        """Link a second card to the shown member: the next card tapped (or a code
        typed in Find) is linked; the member keeps every card they have."""
        staff = self.club_app.staff
        if staff is None or not staff.is_manager:
            self.say(tr("Only a manager can link a card."), "error")
            return
        if self.profile is None:
            self.say(tr("Find the member first."), "error")
            return
        if self.linking:
            self.linking = False
            self.say(tr("Linking cancelled."), "info")
            return
        self.linking, self.replacing = True, False
        self.say(tr("Tap or scan the card to link to {name}, or type its code in Find. "
                    "Ctrl+O: cancel.", name=self.profile.get("name") or ""), "info")

    def action_correct(self) -> None:
        """A manager corrects the name or phone typed at the shown member's
        enrolment here: a correction event refers to it (#15 item 10)."""
        staff = self.club_app.staff
        if staff is None or not staff.is_manager:
            self.say(tr("Only a manager can correct an enrolment."), "error")
            return
        if self.profile is None:
            self.say(tr("Find the member first."), "error")
            return
        enrolment = self.profile.get("enrolment")
        if not enrolment:
            self.say(tr_block("{name} was not enrolled at this terminal; the club can "
                              "correct it.", name=self.profile.get("name") or ""), "error")
            return
        member_id = str(self.profile["member_id"])
        self.app.push_screen(
            CorrectionDialog(tr("Correct the enrolment of {name}",
                                name=self.profile.get("name") or ""), [
                ("name", tr("Name"), str(self.profile.get("name") or ""),
                 tr("first and last name")),
                ("phone", tr("Phone"), str(enrolment.get("phone") or ""),
                 tr("e.g. 0912 123 4567")),
            ]),
            lambda answer: self._correct(str(enrolment["event_id"]), member_id, answer))

    def _correct(self, event_id: str, member_id: str,
                 answer: tuple[dict[str, str], str] | None) -> None:
        if answer is None:
            return
        changes, reason = answer
        params: dict[str, Any] = {"event_id": event_id, "reason": reason}
        if "name" in changes:
            params["name"] = changes["name"]
        if "phone" in changes:
            params["phone"] = ascii_digits(changes["phone"])
        self._corrected = member_id
        self.call_api("event.correct", params, on_done=self.done_correct, session=True)

    def done_correct(self, result: dict[str, Any]) -> None:
        self.say(tr("Enrolment corrected; the original stays in the history."), "ok")
        self.call_api("member.profile", {"member_id": self._corrected},
                      on_done=self.done_profile, session=True)

    def action_adjust(self) -> None:
        """(1.3) A manager adds or deducts points, grants credit or units to the shown
        member (``balance.adjust``); the agent checks the permission and the limits."""
        staff = self.club_app.staff
        if staff is None or not staff.is_manager:
            self.say(tr("Only a manager can adjust points or balances."), "error")
            return
        if self.profile is None:
            self.say(tr("Find the member first."), "error")
            return
        self.call_api("agent.status", {}, on_done=self._open_adjust)

    def _open_adjust(self, status: dict[str, Any]) -> None:
        info = status.get("adjustments")
        if not isinstance(info, dict) or self.profile is None:
            self.say(tr("The club has not enabled manual adjustments."), "error")
            return
        minor = status.get("minor_units")
        member_id = str(self.profile["member_id"])
        self.app.push_screen(
            AdjustDialog(self.profile, info, status.get("currency"),
                         minor if isinstance(minor, int) else 2),
            lambda result: self._adjusted(member_id, result))

    def _adjusted(self, member_id: str, result: dict[str, Any] | None) -> None:
        if result is None:
            return
        kind, amount = str(result.get("kind")), int(result.get("amount") or 0)
        balance = int((result.get("balances") or {}).get(kind, 0))
        status = self.club_app.agent_status
        show = (lambda n: money(n, status.currency, status.minor_units)) \
            if kind.startswith("credit.") else number
        self.say(tr("Recorded: {sign}{amount} {kind}; balance now {balance}.",
                    sign="+" if amount > 0 else "−", amount=show(abs(amount)),
                    kind=kind_name(kind), balance=show(balance)), "ok")
        self.call_api("member.profile", {"member_id": member_id},
                      on_done=self.done_profile, session=True)

    def _link_new_card(self, token: str) -> None:
        assert self.profile is not None
        params: dict[str, Any] = {"member_id": self.profile["member_id"], "token": token}
        if self.replacing and self.lost_token is not None:
            params["replaces"] = self.lost_token
        self.replacing = self.linking = False
        self.lost_token = None
        self.call_api("member.card_link", params, on_done=self.done_card_link, session=True)

    def done_card_link(self, result: dict[str, Any]) -> None:
        if result.get("replaced"):
            self.say(tr("New card linked; the lost card is blocked and keeps no benefits."),
                     "ok")
        else:
            self.say(tr("Card linked: it finds this member now."), "ok")
        self.found_by = None
        self.call_api("member.profile", {"member_id": result["member_id"]},
                      on_done=self.done_profile, session=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "member-find":
            if self.linking and self.profile is not None and event.value.strip():
                # A printed card's code typed while linking (Ctrl+O).
                self._link_new_card("code:" + event.value.strip())
                event.input.value = ""
                return
            self._find(event.value)
        elif event.input.id == "enrol-referrer":
            text = ascii_digits(event.value.strip())
            if not text:
                self.referrer_id = None
                return
            key = "phone" if set(text) <= PHONE_CHARS else "code"
            self.call_api("member.identify", {key: text},
                          on_done=self.done_referrer, on_failed=self.failed_referrer)
        elif event.input.id == "enrol-name":
            self.query_one("#enrol-phone", Input).focus()
        elif event.input.id == "enrol-phone":
            self.query_one("#enrol-referrer", Input).focus()

    def done_referrer(self, result: dict[str, Any]) -> None:
        self.referrer_id = str(result["member_id"])
        self.query_one("#enrol-referrer-name", Static).update(
            tr("Referred by {name}", name=result.get("name", ""))
        )

    def failed_referrer(self, error: ApiError) -> bool:
        self.referrer_id = None
        self.query_one("#enrol-referrer-name", Static).update("")
        return False

    def action_enrol(self) -> None:
        """Enrol the member of the form."""
        name = self.query_one("#enrol-name", Input).value.strip()
        phone = ascii_digits(self.query_one("#enrol-phone", Input).value.strip())
        if not name:
            self.say(tr("Type the member's name."), "error")
            self.query_one("#enrol-name", Input).focus()
            return
        if not phone:
            self.say(tr("Type the member's phone number."), "error")
            self.query_one("#enrol-phone", Input).focus()
            return
        if self.query_one("#enrol-referrer", Input).value.strip() and not self.referrer_id:
            self.say(tr("Press Enter in 'Referred by' to find the referrer, or clear it."), "error")
            return
        params: dict[str, Any] = {"name": name, "phone": phone}
        nid = ascii_digits(self.query_one("#enrol-nid", Input).value.strip())
        if nid:
            params["nid"] = nid
        if self.card_token:
            params["token"] = self.card_token
        if self.referrer_id:
            params["referred_by"] = self.referrer_id
        self._enrolled_name = name
        self.call_api("member.enrol", params, on_done=self.done_enrol, session=True)

    def done_enrol(self, result: dict[str, Any]) -> None:
        name = self._enrolled_name
        self.action_clear()
        self.say(
            tr("{name} is enrolled (member {id}).", name=name, id=str(result["member_id"])[:14]),
            "ok",
        )
