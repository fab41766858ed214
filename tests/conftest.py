"""Shared fixtures.

Fixtures that start real services (mosquitto, pcscd with vpcd, the simulated
club) are defined once, in the plugin modules listed here (one module per
service, so the file stays readable), and reused by every test that needs them.
"""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.mosquitto",
    "tests.fixtures.pcsc",
    "tests.fixtures.club",
    "tests.fixtures.hostile",
]

# CI runs property tests briefly; bench/ and CLUBTERM_LONG=1 run them long.
settings.register_profile("ci", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("long", max_examples=20000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
