"""Webhooks: endpoints that internal systems register, and signed deliveries of every event."""
