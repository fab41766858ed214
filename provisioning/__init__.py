"""Provisioning a terminal: enrolment, self-test, certificate rotation, decommissioning.

Run as ``clubterm provision …`` by a technician; see ``docs/provisioning.md``.
The daemon calls :func:`provisioning.expiry.cert_expiry_warning` at start and daily.
"""
