"""Pure card-data core: Luhn, masking, identifier tokens, ISO 7813 tracks, BER-TLV.

No I/O, no clock, no globals. Every parser raises only
:class:`agent.errors.CardDataError`.
"""
