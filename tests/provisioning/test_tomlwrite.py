"""The configuration writer produces TOML that reads back as the same data."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning.tomlwrite import dump_toml

keys = st.text(min_size=1, max_size=12)
scalars = st.one_of(st.text(max_size=30), st.integers(-(2**63), 2**63 - 1), st.booleans(),
                    st.floats(allow_nan=False, allow_infinity=False))
values = st.one_of(scalars, st.lists(st.text(max_size=10), max_size=4))
tables = st.dictionaries(keys, values, max_size=5)
documents = st.dictionaries(keys, st.one_of(values, tables,
                                           st.dictionaries(keys, tables, max_size=2)), max_size=5)


@given(documents)
def test_round_trip(doc: dict) -> None:
    assert tomllib.loads(dump_toml(doc, "a header\nover two lines")) == doc


def test_refuses_what_it_cannot_write() -> None:
    # Finite floats are written (the configuration's timings are floats: 0.2 s);
    # infinities, NaN and other types have no place in agent.toml.
    for bad in (float("inf"), float("nan"), None, {1, 2}):
        with pytest.raises(TypeError, match="cannot write"):
            dump_toml({"x": bad})
