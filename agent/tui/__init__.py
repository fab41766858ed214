"""The staff terminal UI (Textual), a client of the agent's local API.

Start it with ``clubterm tui``; build one with :class:`agent.tui.app.ClubtermApp`.
Nothing in the agent's core imports this package (the daemon never loads
Textual).
"""
