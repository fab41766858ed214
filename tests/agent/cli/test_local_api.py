"""What `clubterm status` and `clubterm sale` share: amounts in the engine's one format."""

from __future__ import annotations

import pytest

from agent.cli.local_api import amount_text
from agent.rules import format_money


@pytest.mark.parametrize(("amount", "minor_units", "shown"), [
    (None, 2, "-"), (505, 2, "5.05"), (-5, 2, "-0.05"), (100, None, "1.00"), (7, 0, "7"),
    (1234567, 3, "1234.567"),
])
def test_amount_text(amount: int | None, minor_units: int | None, shown: str) -> None:
    assert amount_text(amount, minor_units) == shown
    if amount is not None:
        assert shown == format_money(amount, 2 if minor_units is None else minor_units)
