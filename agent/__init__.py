"""clubterm: the agent for loyalty-club card terminals.

The core packages (``carddata``, ``rules``) are pure; I/O lives at the edges
(``drivers``, ``offline_queue``, ``sync``, ``localapi``, ``tui``).
"""

__version__ = "0.1.0"
