"""Delivery of outbox notifications: the notifier contract and the dispatcher."""
