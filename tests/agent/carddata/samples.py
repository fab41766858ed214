"""Real-world-shaped card data for tests and bench: tracks and EMV records.

The cards are the public test numbers (4111111111111111, 5555555555554444,
378282246310005, the EMV test card 4761739001010119) and a made-up Shetab
(Iranian) number. The EMV records are built by a tiny TLV writer kept here on
purpose, independent of :func:`agent.carddata.tlv.encode_tlv`, so that parser
tests do not check the parser against its own encoder.
"""

from __future__ import annotations

from dataclasses import dataclass


def tlv(tag: str, value: bytes | str) -> bytes:
    """BER-TLV object from a hex tag and a value (bytes, or hex text)."""
    raw = bytes.fromhex(value) if isinstance(value, str) else value
    n = len(raw)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    elif n < 0x10000:
        length = bytes([0x82, n >> 8, n & 0xFF])
    else:
        length = bytes([0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF])
    return bytes.fromhex(tag) + length + raw


def filler(n: int, seed: int = 11) -> bytes:
    """``n`` deterministic bytes that look like a certificate."""
    return bytes((i * 37 + seed) % 256 for i in range(n))


@dataclass(frozen=True)
class TrackSample:
    """A reader burst and what parse_swipe must find in it."""

    label: str
    text: str
    pan: str
    expiry: str | None
    name: str | None
    service_code: str | None
    tracks: tuple[int, ...]


VISA = "4111111111111111"
MC = "5555555555554444"
AMEX = "378282246310005"
EMV_VISA = "4761739001010119"
SHETAB = "6037991234567893"
PANS = (VISA, MC, AMEX, EMV_VISA, SHETAB)

T1_VISA = "%B4111111111111111^DOE/JOHN^2512101000000000000000000000000?"
T2_VISA = ";4111111111111111=25121010000000000000?"
T1_MC = "%B5555555555554444^MUSTERMANN/ERIKA MS^28112010000000000000000000?"
T2_MC = ";5555555555554444=28112011234567890123?"
T1_AMEX = "%B378282246310005^SMITH/JANE^2703201150419?"
T2_AMEX = ";378282246310005=270320115041912345?"
T1_EMV = "%B4761739001010119^VISA ACQUIRER TEST/CARD 01^22122011143804400000000000?"
T2_EMV = ";4761739001010119=22122011143804400000?"
T2_SHETAB = ";6037991234567893=04092010000000000000?"
# Track 3 (ISO 4909 layout) as some readers send it after track 2.
T3 = ";011234567890123445=724724100000000000030300XXXX040400099010=?"

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")

TRACK_SAMPLES: tuple[TrackSample, ...] = (
    TrackSample("visa both tracks", T1_VISA + T2_VISA, VISA, "2512", "DOE/JOHN", "101", (1, 2)),
    TrackSample("visa CR LF between and after", T1_VISA + "\r\n" + T2_VISA + "\r\n",
                VISA, "2512", "DOE/JOHN", "101", (1, 2)),
    TrackSample("visa LRC after each track", T1_VISA + "=" + T2_VISA + "4",
                VISA, "2512", "DOE/JOHN", "101", (1, 2)),
    TrackSample("LRC that is a sentinel", T1_VISA + ";" + T2_VISA + "%",
                VISA, "2512", "DOE/JOHN", "101", (1, 2)),
    TrackSample("LRC that is an end sentinel", T1_VISA + "?" + T2_VISA + "?",
                VISA, "2512", "DOE/JOHN", "101", (1, 2)),
    TrackSample("track 1 error marker", "%E?" + T2_VISA, VISA, "2512", None, "101", (2,)),
    TrackSample("track 2 error marker", T1_VISA + ";E?", VISA, "2512", "DOE/JOHN", "101", (1,)),
    TrackSample("lower-case error marker", "%e?" + T2_MC, MC, "2811", None, "201", (2,)),
    TrackSample("caps lock wedge", T1_VISA.lower() + T2_VISA, VISA, "2512", "DOE/JOHN", "101",
                (1, 2)),
    TrackSample("junk before and after", "\x1b[A  noise" + T1_MC + T2_MC + " trailing junk\n",
                MC, "2811", "MUSTERMANN/ERIKA MS", "201", (1, 2)),
    TrackSample("track 2 only", T2_MC, MC, "2811", None, "201", (2,)),
    TrackSample("track 1 only", T1_MC, MC, "2811", "MUSTERMANN/ERIKA MS", "201", (1,)),
    TrackSample("tracks in reverse order", T2_VISA + T1_VISA, VISA, "2512", "DOE/JOHN", "101",
                (1, 2)),
    TrackSample("three tracks", T1_VISA + T2_VISA + T3, VISA, "2512", "DOE/JOHN", "101", (1, 2)),
    TrackSample("amex 15 digits", T1_AMEX + T2_AMEX, AMEX, "2703", "SMITH/JANE", "201", (1, 2)),
    TrackSample("emv test card magstripe", T1_EMV + T2_EMV, EMV_VISA, "2212",
                "VISA ACQUIRER TEST/CARD 01", "201", (1, 2)),
    TrackSample("shetab track 2", T2_SHETAB, SHETAB, "0409", None, "201", (2,)),
    TrackSample("persian digits from a persian layout", T2_SHETAB.translate(PERSIAN), SHETAB,
                "0409", None, "201", (2,)),
    TrackSample("bare track 2 without sentinels", "4111111111111111=25121010000000000000\r\n",
                VISA, "2512", None, "101", (2,)),
    TrackSample("bare track 1 without sentinels", "B4111111111111111^DOE/JOHN^2512101?",
                VISA, "2512", "DOE/JOHN", "101", (1,)),
    TrackSample("track 1 PAN grouped by spaces", "%B4111 1111 1111 1111^DOE/JOHN^2512101?",
                VISA, "2512", "DOE/JOHN", "101", (1,)),
    TrackSample("no expiry and no service code", "%B4111111111111111^DOE/JOHN^^^?",
                VISA, None, "DOE/JOHN", None, (1,)),
    TrackSample("track 2 without end sentinel then CR", ";4111111111111111=2512101\r",
                VISA, "2512", None, "101", (2,)),
    TrackSample("track 2 expiry only", ";4111111111111111=2512?", VISA, "2512", None, None, (2,)),
)

# (burst, a fragment of the error message)
TRACK_ERRORS: tuple[tuple[str, str], ...] = (
    ("%E?;E?", "could not read"),
    ("%E?\r\n;E?\r\n", "could not read"),
    ("%E?", "could not read"),
    ("", "no card data"),
    ("hello world", "no card data"),
    ("9780201379624", "no card data"),
    ("50% off; today only", "no card data"),
    (";4111111111111112=2512101?", "check digit"),
    ("%B4111111111111112^DOE/JOHN^2512101?", "check digit"),
    (T1_VISA + T2_MC, "different cards"),
    (";4111111111111111=25A2101?", "characters"),
    (";4111111111111111=2513101?", "expiry"),
    (";4111111111111111=2500101?", "expiry"),
    ("%A4111111111111111^DOE/JOHN^2512101?", "format B"),
    (";41111111=2512?", "digits"),
    (";4111111111111111?", "separator"),
    ("%B4111111111111111 DOE/JOHN 2512101?", "separator"),
    (";4111111111111111=25121x1?", "characters"),
    (";4111111111111111=2512101" + "0" * 40 + "?", "too long"),
)

BARCODES = ("9780201379624", "CLUB-000123", "https://club.example/c/7?x=1", "%ABC?",
            "5901234123457", "(01)09501101530003(17)140704(10)AB-123", "")

# --- EMV -------------------------------------------------------------------------

T57_EMV = "4761739001010119D22122011143804400000F"
T57_VISA = "4111111111111111D25122010000000000000F"
T57_MC = "5555555555554444D28112010000000000000F"

# SELECT PPSE answer (contactless): 6F > 84, A5 > BF0C > 61 > 4F, 87
SELECT_PPSE = tlv("6F", tlv("84", b"2PAY.SYS.DDF01") + tlv("A5", tlv("BF0C", tlv(
    "61", tlv("4F", "A0000000031010") + tlv("50", b"VISA CREDIT") + tlv("87", "01")))))
# SELECT AID answer: FCI with a PDOL.
SELECT_AID = tlv("6F", tlv("84", "A0000000031010") + tlv("A5", tlv("50", b"VISA CREDIT")
                 + tlv("87", "01") + tlv("9F38", "9F66049F02069F37045F2A02")
                 + tlv("5F2D", b"faen") + tlv("BF0C", tlv("9F4D", "0B0A"))))
PDOL = bytes.fromhex("9F66049F02069F37045F2A02")
# GET PROCESSING OPTIONS answers: format 1 (80: AIP + AFL) and format 2 (77).
GPO_FORMAT1 = tlv("80", "1C00" + "08010100" + "10010300")
GPO_FORMAT2 = tlv("77", tlv("82", "2000") + tlv("94", "08010100") + tlv("57", T57_EMV)
                  + tlv("9F10", "06010A03A00000") + tlv("9F26", "1122334455667788")
                  + tlv("9F27", "80") + tlv("9F36", "0001"))

# READ RECORD answers of the EMV test card 4761739001010119 (without SW1 SW2).
RECORD_EMV_SFI1 = tlv("70", tlv("57", T57_EMV) + tlv("5F20", b"VISA ACQUIRER TEST/CARD 01")
                      + tlv("9F1F", b"1143804400000000"))
# 81 long form: the record holds a 96-byte issuer public key certificate.
RECORD_EMV_SFI2 = tlv("70", tlv("5A", EMV_VISA) + tlv("5F24", "221231") + tlv("5F25", "090701")
                      + tlv("5F28", "0840") + tlv("5F34", "01")
                      + tlv("8C", "9F02069F03069F1A0295055F2A029A039C019F3704")
                      + tlv("8D", "8A029F02069F03069F1A0295055F2A029A039C019F3704")
                      + tlv("8E", "000000000000000042031E03") + tlv("9F07", "FF00")
                      + tlv("9F0D", "F040008000") + tlv("9F0E", "0010000000")
                      + tlv("9F0F", "F040009800") + tlv("8F", "92") + tlv("90", filler(96)))
# 82 long form: an ICC public key certificate of 248 bytes plus remainder.
RECORD_EMV_SFI3 = tlv("70", tlv("9F46", filler(248, 3)) + tlv("9F47", "03")
                      + tlv("9F48", filler(42, 5)) + tlv("9F4A", "82"))
# Contact Visa 4111111111111111: track 2 equivalent and name, 00 padding after.
RECORD_VISA = tlv("70", tlv("57", T57_VISA) + tlv("5F20", b"CARDHOLDER/VISA")) + b"\x00\x00"
# Contactless Mastercard in magstripe mode: 56 (track 1 text), 9F6B, 9F62..9F67.
RECORD_MC_MAGSTRIPE = tlv("70", tlv("9F6C", "0001") + tlv("9F62", "00000000E000")
                          + tlv("9F63", "00000000000E") + tlv("56", b"B5555555555554444^"
                          b"MUSTERMANN/ERIKA^28112010000000000000") + tlv("9F64", "03")
                          + tlv("9F65", "000E") + tlv("9F66", "0E70") + tlv("9F6B", T57_MC)
                          + tlv("9F67", "03"))
# Mastercard contact: 5A + 5F24 only, padded with FF between objects.
RECORD_MC_5A = tlv("70", tlv("5A", MC) + b"\xff" + tlv("5F24", "281130")
                   + tlv("5F20", b"MUSTERMANN/ERIKA          "))
# Amex: 15-digit PAN, F-padded in 5A.
RECORD_AMEX = tlv("70", tlv("5A", AMEX + "F") + tlv("5F24", "270331"))

# (label, record bytes, PAN, expiry YYMM, name, service code)
RECORD_SAMPLES: tuple[tuple[str, bytes, str, str | None, str | None, str | None], ...] = (
    ("emv test card SFI 1", RECORD_EMV_SFI1, EMV_VISA, "2212", "VISA ACQUIRER TEST/CARD 01",
     "201"),
    ("emv test card SFI 2 (81 length)", RECORD_EMV_SFI2, EMV_VISA, "2212", None, None),
    ("emv test card GPO format 2", GPO_FORMAT2, EMV_VISA, "2212", None, "201"),
    ("visa 57 with padding", RECORD_VISA, VISA, "2512", "CARDHOLDER/VISA", "201"),
    ("mastercard contactless magstripe", RECORD_MC_MAGSTRIPE, MC, "2811", "MUSTERMANN/ERIKA",
     "201"),
    ("mastercard 5A with FF padding", RECORD_MC_5A, MC, "2811", "MUSTERMANN/ERIKA", None),
    ("amex F-padded 5A", RECORD_AMEX, AMEX, "2703", None, None),
)

# Everything the fuzzers mutate.
TLV_CORPUS = (SELECT_PPSE, SELECT_AID, GPO_FORMAT1, GPO_FORMAT2, RECORD_EMV_SFI1,
              RECORD_EMV_SFI2, RECORD_EMV_SFI3, RECORD_VISA, RECORD_MC_MAGSTRIPE, RECORD_MC_5A,
              RECORD_AMEX, PDOL)
TRACK_CORPUS = tuple(s.text for s in TRACK_SAMPLES)
