"""Shared limits and the one decode entry point with path-bearing errors."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec

from agent.errors import ClubtermError

#: Largest amount, total or balance (minor units or points): 2**53 - 1, the largest
#: integer every JSON reader reads exactly (docs/limits.md).
MAX_AMOUNT = 2**53 - 1
#: Largest MQTT payload (a batch), bytes.
MAX_PAYLOAD = 256 * 1024

Amount = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)]
SignedAmount = Annotated[int, msgspec.Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=2000)]
Object = dict[str, Any]

T = TypeVar("T")


class Message(msgspec.Struct, kw_only=True, omit_defaults=False):
    """Base of every wire message: unknown keys are ignored (v1 peers keep working)."""


class ProtocolError(ClubtermError, ValueError):
    """A payload does not match its message definition; ``str()`` names the path."""


_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}
_ENCODER = msgspec.json.Encoder()


def decode(kind: type[T], payload: bytes | str, *, limit: int = MAX_PAYLOAD) -> T:
    """``payload`` as a ``kind``, or :class:`ProtocolError` such as
    ``Expected `int`, got `str` - at `$.lines[0].qty```."""
    if len(payload) > limit:
        raise ProtocolError(f"message of {len(payload)} bytes is over the "
                            f"{limit // 1024} KiB limit")
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind)
    try:
        return decoder.decode(payload)  # type: ignore[no-any-return]
    except msgspec.DecodeError as exc:
        raise ProtocolError(str(exc)) from None
    except RecursionError:
        raise ProtocolError("message is nested too deeply to read") from None


def encode(value: Any) -> bytes:
    """Compact UTF-8 JSON of a Struct (or plain data)."""
    return _ENCODER.encode(value)


def to_builtins(value: Any) -> Any:
    """A Struct as plain dicts/lists (what older code paths expect)."""
    return msgspec.to_builtins(value)
