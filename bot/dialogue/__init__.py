"""The dialogue engine: one inbound message in, replies out, state and log persisted."""
