"""The simulated club (see sim.py): ledger, MQTT, HTTPS snapshot, rule bundles."""
