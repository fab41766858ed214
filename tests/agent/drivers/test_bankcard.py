"""EMV protocol against recorded exchanges (exact bytes) and the hw_sim cards in-process."""

from datetime import date

import pytest

from agent.drivers import bankcard
from agent.drivers.apdu import CardChannel, CardRemoved, ReplayTransport
from agent.errors import CardDataError
from hw_sim import cards

TERMINAL = bankcard.TerminalData(today=date(2026, 11, 22), unpredictable=bytes.fromhex("11223344"))

SELECT_PPSE = "00A404000E325041592E5359532E444446303100"
SELECT_PSE = "00A404000E315041592E5359532E444446303100"
PPSE_FCI_VISA = ("6F26840E325041592E5359532E4444463031A514870101"
                 "BF0C0E610C4F07A0000000031010870101" "9000")
VISA_PDOL = "9F66049F02069F03069F1A0295055F2A029A039C019F3704"
SELECT_VISA = "00A4040007A000000003101000"
VISA_FCI = f"6F298407A0000000031010A51E870101 9F3818{VISA_PDOL} 9000".replace(" ", "")
# PDOL data: TTQ, amount 0, other 0, country 0840, TVR 0, currency 0840, 261122, 00, UN.
PDOL_DATA = ("36004000" + "00" * 6 + "00" * 6 + "0840" + "00" * 5 + "0840" + "261122" + "00"
             + "11223344")
GPO_VISA = f"80A8000023 8321{PDOL_DATA} 00".replace(" ", "")
TRACK2 = "4111111111111111D28122010000000000000F"
GPO_VISA_ANSWER = f"771F 8202 2040 9404 18010100 5713 {TRACK2} 9000".replace(" ", "")


def test_build_pdol_data_zero_fills_unknown_tags_and_pads_numbers():
    pdol = bytes.fromhex("9F6604" "9F0206" "9F1A03" "DF0102" "9A03")
    data = bankcard.build_pdol_data(pdol, TERMINAL)
    assert data.hex().upper() == "36004000" "000000000000" "000840" "0000" "261122"


def test_visa_contactless_recorded_exchange_exact_bytes():
    t = ReplayTransport([
        (SELECT_PPSE, PPSE_FCI_VISA),
        (SELECT_VISA, VISA_FCI),
        (GPO_VISA, GPO_VISA_ANSWER),
    ])
    card = bankcard.read_bank_card(CardChannel(t), TERMINAL, contactless=True)
    assert card.pan == "4111111111111111" and card.expiry == "2812"
    assert card.apdus == 3 and t.finished
    assert "4111" not in repr(card)


def test_gpo_conditions_not_satisfied_tries_next_application():
    # The PPSE names Visa; its GPO answers 6985; the fallback list then finds Mastercard.
    t = ReplayTransport([
        (SELECT_PPSE, PPSE_FCI_VISA),
        (SELECT_VISA, "6F0B8407A0000000031010A500" "9000"),
        ("80A8000002830000", "6985"),
        ("00A4040007A000000003201000", "6A82"),
        ("00A4040007A000000003202000", "6A82"),
        ("00A4040007A000000004101000", "6F0B8407A0000000041010A5009000"),
        ("80A8000002830000", "800A198008010100100101009000"),
        ("00B2010C00", "70105A0855555555555544445F24032812319000"),
    ])
    card = bankcard.read_bank_card(CardChannel(t), TERMINAL, contactless=True)
    assert card.pan == "5555555555554444" and card.expiry == "2812"
    assert t.finished   # stopped as soon as PAN and expiry were known (no SFI 2 read)


@pytest.mark.parametrize("name", ["visa-contactless", "mastercard", "visa-contact", "ppse-fails",
                                  "sw-chaining"])
def test_each_virtual_card_in_process(name):
    info = cards.CARDS[name]
    transport = cards.DirectTransport(info.make())
    contactless = transport.atr == cards.ATR_CONTACTLESS_EMV
    card = bankcard.read_bank_card(CardChannel(transport), TERMINAL, contactless=contactless)
    assert card.pan == info.pan and card.expiry == cards.EXPIRY


def test_contact_card_reads_pse_records_and_several_sfis():
    transport = cards.DirectTransport(cards.visa_contact())
    card = bankcard.read_bank_card(CardChannel(transport), TERMINAL, contactless=False)
    commands = [c.hex().upper() for c, _ in transport.log]
    assert commands[0] == "00A404000E315041592E5359532E4444463031"   # T=0: no Le
    assert "00B2010C00" in commands                                       # PSE directory, SFI 1
    assert {"00B2011400", "00B2021400", "00B2011C00"} <= set(commands)    # SFIs 2 and 3
    assert any(c.startswith("00C00000") for c in commands)                # GET RESPONSE
    assert card.pan == "4761739001010119"


def test_wrong_le_and_61xx_on_t1():
    transport = cards.DirectTransport(cards.sw_chaining())
    bankcard.read_bank_card(CardChannel(transport), TERMINAL, contactless=False)
    answers = [a[:1].hex().upper() for _, a in transport.log]
    assert "61" in answers and "6C" in answers


def test_removed_mid_read_raises_card_removed():
    transport = cards.DirectTransport(cards.removed_mid_read())
    with pytest.raises(CardRemoved):
        bankcard.read_bank_card(CardChannel(transport), TERMINAL, contactless=True)


def test_no_payment_application():
    t = ReplayTransport([(SELECT_PPSE, "6A82")]
                        + [(f"00A40400{len(bytes.fromhex(a)):02X}{a}00", "6A82")
                           for _, a in bankcard.KNOWN_AIDS])
    with pytest.raises(bankcard.NoBankApplication):
        bankcard.read_bank_card(CardChannel(t), TERMINAL, contactless=True)
    assert t.finished


def test_malformed_afl_is_card_data_error():
    t = ReplayTransport([
        (SELECT_PPSE, "6A82"),
        ("00A4040007A000000003101000", "6F0B8407A0000000031010A5009000"),
        ("80A8000002830000", "80051980080101" + "9000"),
    ])
    with pytest.raises(CardDataError):
        bankcard.read_bank_card(CardChannel(t), TERMINAL, contactless=True)
