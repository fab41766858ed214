"""Simulated hardware and a simulated club, for tests and the demo."""
