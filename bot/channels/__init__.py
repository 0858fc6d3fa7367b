"""Channel adapters: each turns a platform's requests into InboundMessages and renders Replies."""
