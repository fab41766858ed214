"""The simulated club server (HTTPS endpoints, broker-side helpers)."""
