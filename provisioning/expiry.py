"""Certificate expiry warnings (the daemon calls this at start and once a day)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

WARN_BEFORE = timedelta(days=30)


def cert_not_after(cert_path: Path) -> datetime:
    """When the PEM certificate at ``cert_path`` expires (UTC).

    Raises OSError or ValueError when it cannot be read or parsed.
    """
    return x509.load_pem_x509_certificate(Path(cert_path).read_bytes()).not_valid_after_utc


def cert_expiry_warning(cert_path: Path, now: datetime) -> str | None:
    """A sentence for the log and status if the certificate expires within 30 days.

    None when it is valid for longer. An unreadable or expired certificate is also
    a warning (the agent cannot reach the club with it), never an exception.
    ``now`` must be timezone-aware.
    """
    try:
        not_after = cert_not_after(cert_path)
    except (OSError, ValueError) as exc:
        return f"the terminal certificate {cert_path} cannot be read ({exc.__class__.__name__})"
    left = not_after - now
    if left <= timedelta(0):
        return (f"the terminal certificate expired on {not_after:%Y-%m-%d}; the club will refuse "
                f"it. Run 'clubterm provision rotate' (or enrol again with a new code)")
    if left <= WARN_BEFORE:
        days = left.days
        return (f"the terminal certificate expires on {not_after:%Y-%m-%d} (in {days} day"
                f"{'s' if days != 1 else ''}); run 'clubterm provision rotate'")
    return None
