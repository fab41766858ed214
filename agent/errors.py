"""The project's exception types.

Every error that leaves a clubterm module is a :class:`ClubtermError`. Errors from
pyserial, pyscard, evdev, paho-mqtt and sqlite are turned into one of these at the
boundary where they are caught, so callers never catch a library's exception.
"""

from __future__ import annotations


class ClubtermError(Exception):
    """Root of every error clubterm raises on purpose."""


class ConfigError(ClubtermError):
    """The configuration or a terminal profile is unusable.

    The message names the file, the key and what is wrong, for a technician.
    """

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None):
        self.path = path
        self.key = key
        where = ""
        if path and key:
            where = f"{path}: [{key}] "
        elif path:
            where = f"{path}: "
        elif key:
            where = f"[{key}] "
        super().__init__(f"{where}{message}")
        self.detail = message


class CardDataError(ClubtermError):
    """Card data (track, TLV, APDU answer) could not be parsed.

    ``offset`` is the position in the input where parsing failed, when known.
    The message never contains card data.
    """

    def __init__(self, message: str, *, offset: int | None = None):
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (at offset {offset})")


class ReaderError(ClubtermError):
    """A reader failed (unplugged, no service, card removed mid-read)."""


class StorageError(ClubtermError):
    """The store could not make something durable; nothing was recorded."""


class LinkError(ClubtermError):
    """The link to the club failed (broker, TLS, HTTPS snapshot)."""


class CardReportedLost(ClubtermError):
    """(1.3) The club says the card looked up was reported lost by ``member_id``
    (agent/sync/lookup.py): refused as lost, not as unknown. Not a link failure: the
    club answered, and is asked again at the next tap."""

    def __init__(self, member_id: str):
        self.member_id = member_id
        super().__init__(f"this card was reported lost by member {member_id}")


class RulesError(ClubtermError):
    """A rule bundle is malformed or a quote request is invalid."""


class BundleRejected(RulesError):
    """A rule bundle was refused; ``reason`` is a short machine code."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


class LimitExceeded(RulesError):
    """A redemption or credit request is over a limit; ``limit`` names it."""

    def __init__(self, limit: str, message: str):
        self.limit = limit
        super().__init__(message)


class ProvisioningError(ClubtermError):
    """Enrolment, rotation or decommissioning failed; nothing was changed."""


class ApiError(ClubtermError):
    """An error answer of the local API (see ``local-api.md``)."""

    def __init__(self, code: int, message: str, data: object | None = None):
        self.code = code
        self.data = data
        super().__init__(message)
