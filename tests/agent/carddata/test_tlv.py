"""BER-TLV as EMV uses it: real answers, long lengths, padding, malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.carddata.tlv import (
    MAX_DEPTH,
    Tlv,
    encode_tlv,
    find_tag,
    iter_tlv,
    parse_dol,
    parse_tlv,
    tag_hex,
)
from agent.errors import CardDataError
from tests.agent.carddata import samples
from tests.agent.carddata.samples import tlv


def test_select_ppse_nests_four_templates() -> None:
    [fci] = parse_tlv(samples.SELECT_PPSE)
    assert fci.tag == 0x6F and fci.constructed
    aid = find_tag([fci], 0x4F)
    assert aid is not None and aid.value == bytes.fromhex("A0000000031010")
    assert [(d, tag_hex(n.tag)) for d, n in iter_tlv([fci])] == [
        (0, "6F"), (1, "84"), (1, "A5"), (2, "BF0C"), (3, "61"), (4, "4F"), (4, "50"), (4, "87")]


def test_multi_byte_tags() -> None:
    nodes = parse_tlv(samples.SELECT_AID)
    pdol = find_tag(nodes, 0x9F38)
    assert pdol is not None and pdol.value == samples.PDOL
    lang = find_tag(nodes, 0x5F2D)
    assert lang is not None and lang.value == b"faen"
    assert find_tag(nodes, 0xBF0C) is not None
    three = parse_tlv(bytes.fromhex("DF810102ABCD"))
    assert three == [Tlv(0xDF8101, b"\xab\xcd")]


def test_long_form_lengths_81_82() -> None:
    [record2] = parse_tlv(samples.RECORD_EMV_SFI2)
    assert samples.RECORD_EMV_SFI2[1] == 0x81
    cert = find_tag([record2], 0x90)
    assert cert is not None and cert.value == samples.filler(96)
    [record3] = parse_tlv(samples.RECORD_EMV_SFI3)
    assert samples.RECORD_EMV_SFI3[1] == 0x82
    icc = find_tag([record3], 0x9F46)
    assert icc is not None and len(icc.value) == 248


def test_long_form_83() -> None:
    data = bytes.fromhex("DF0183010000") + bytes(0x10000)
    [node] = parse_tlv(data)
    assert node.tag == 0xDF01 and len(node.value) == 0x10000


def test_padding_00_and_ff_between_and_around_objects() -> None:
    data = b"\x00\xff" + tlv("5A", "4111111111111111") + b"\x00\x00\xff" + tlv(
        "70", b"\x00" + tlv("5F24", "251231") + b"\xff") + b"\x00"
    nodes = parse_tlv(data)
    assert [n.tag for n in nodes] == [0x5A, 0x70]
    assert nodes[1].children == [Tlv(0x5F24, bytes.fromhex("251231"))]


def test_empty_input_and_empty_template() -> None:
    assert parse_tlv(b"") == []
    assert parse_tlv(b"\x00\x00") == []
    assert parse_tlv(b"\x70\x00") == [Tlv(0x70, b"", [])]


def test_find_tag_is_depth_first() -> None:
    data = tlv("70", tlv("A5", tlv("50", b"inner"))) + tlv("50", b"outer")
    found = find_tag(parse_tlv(data), 0x50)
    assert found is not None and found.value == b"inner"
    assert find_tag(parse_tlv(data), 0x5A) is None


@pytest.mark.parametrize(("data", "fragment", "offset"), [
    ("7080", "indefinite", 1),
    ("708400000001", "4 bytes", 1),
    ("70850000000001", "5 bytes", 1),
    ("9F", "cut short", 0),
    ("5A", "length is missing", 1),
    ("5A81", "cut short", 1),
    ("5A8201", "cut short", 1),
    ("5A0501", "needs 5 bytes", 0),
    ("7004" "5A0501" "02", "needs 5 bytes", 2),
    ("9F818181810100", "longer than 4", 0),
    ("5A01AA" "9F", "cut short", 3),
])
def test_malformed_input_raises_with_offset(data: str, fragment: str, offset: int) -> None:
    with pytest.raises(CardDataError) as info:
        parse_tlv(bytes.fromhex(data))
    assert fragment in str(info.value)
    assert info.value.offset == offset


def test_nesting_depth_is_bounded() -> None:
    data = b""
    for _ in range(MAX_DEPTH + 5):
        data = tlv("70", data)
    with pytest.raises(CardDataError, match="nested"):
        parse_tlv(data)
    shallow = b""
    for _ in range(MAX_DEPTH):
        shallow = tlv("70", shallow)
    assert parse_tlv(shallow)


def test_tlv_repr_hides_values() -> None:
    nodes = parse_tlv(samples.RECORD_EMV_SFI1)
    text = repr(nodes)
    assert "4761739001010119" not in text and "47617390" not in text
    assert "Tlv(57, 19 bytes)" in text


def test_parse_dol() -> None:
    assert parse_dol(samples.PDOL) == [(0x9F66, 4), (0x9F02, 6), (0x9F37, 4), (0x5F2A, 2)]
    cdol1 = bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704")
    assert parse_dol(cdol1)[-1] == (0x9F37, 4)
    assert parse_dol(b"") == []
    for bad in ("9F66", "9F", "00", "9F6604FF"):
        with pytest.raises(CardDataError):
            parse_dol(bytes.fromhex(bad))


@pytest.mark.parametrize(("length", "header"), [
    (0, "5A00"), (0x7F, "5A7F"), (0x80, "5A8180"), (0xFF, "5A81FF"), (0x100, "5A820100"),
    (0xFFFF, "5A82FFFF"), (0x10000, "5A83010000")])
def test_encode_uses_the_shortest_length(length: int, header: str) -> None:
    encoded = encode_tlv(0x5A, bytes(length))
    assert encoded[: len(header) // 2].hex().upper() == header
    assert parse_tlv(encoded) == [Tlv(0x5A, bytes(length))]


@pytest.mark.parametrize("tag", [0, -1, 0xFF01, 0x9F, 0x9F80, 0x5A01, 0x9F8181, 0x1F, 0x1FFFFFFFF])
def test_encode_refuses_malformed_tags(tag: int) -> None:
    with pytest.raises(CardDataError):
        encode_tlv(tag, b"")


# --- properties --------------------------------------------------------------------

@st.composite
def tags(draw: st.DrawFn, constructed: bool) -> int:
    cls = draw(st.integers(0, 3)) << 6
    flag = 0x20 if constructed else 0
    if draw(st.booleans()):
        low = draw(st.integers(0, 0x1E))
        first = cls | flag | low
        if first in (0x00, 0xFF):
            first = cls | flag | 0x01
        return first
    first = cls | flag | 0x1F
    if first == 0xFF:
        first = 0xDF if not constructed else 0xBF
    extra = draw(st.lists(st.integers(0x80, 0xFF), max_size=1))
    last = draw(st.integers(0x01, 0x7F))
    return int.from_bytes(bytes([first, *extra, last]), "big")


def _encode(node: Tlv) -> bytes:
    if node.children is None:
        return encode_tlv(node.tag, node.value)
    return encode_tlv(node.tag, b"".join(_encode(c) for c in node.children))


primitives = st.builds(lambda t, v: Tlv(t, v), tags(False), st.binary(max_size=300))


def _template(children: st.SearchStrategy[list[Tlv]]) -> st.SearchStrategy[Tlv]:
    return st.builds(lambda t, cs: Tlv(t, b"".join(_encode(c) for c in cs), cs),
                     tags(True), children)


trees = st.recursive(primitives, lambda inner: _template(st.lists(inner, max_size=4)),
                     max_leaves=12)


@given(st.lists(trees, max_size=5))
def test_encode_then_parse_round_trips(nodes: list[Tlv]) -> None:
    data = b"".join(_encode(n) for n in nodes)
    assert parse_tlv(data) == nodes


@given(st.lists(trees, min_size=1, max_size=4), st.lists(st.sampled_from([b"\x00", b"\xff"]),
                                                         max_size=3))
def test_padding_between_objects_changes_nothing(nodes: list[Tlv], pad: list[bytes]) -> None:
    glue = b"".join(pad)
    data = glue + glue.join(_encode(n) for n in nodes) + glue
    assert parse_tlv(data) == nodes


@given(st.lists(st.tuples(tags(False), st.integers(0, 0xFFFF)), max_size=8))
def test_dol_round_trips(entries: list[tuple[int, int]]) -> None:
    data = b"".join(encode_tlv(t, bytes(n))[: len(encode_tlv(t, bytes(n))) - n]
                    for t, n in entries)
    assert parse_dol(data) == entries
