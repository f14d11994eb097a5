"""Logs, metrics and traces: one request context that all three share."""
