"""Simulated hardware and the simulated club, for tests and the demo."""
