"""One screen per module, each with its layout in a ``.tcss`` file beside it."""
