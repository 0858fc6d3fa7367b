"""Conversational capabilities, one module each. The dialogue engine asks them in order whether
a turn concerns them; :func:`handlers.registry.default_handlers` lists them explicitly."""
