"""One typed definition of every wire message (msgspec Structs).

The agent, the link and the simulated club encode and decode through these
Structs; the JSON Schemas, AsyncAPI and OpenAPI documents under
``docs/protocol/`` are generated from them (``python -m agent.protocol.schemas``).
"""
