"""Payload models of the notification families reclaim reads (pure pydantic, no I/O)."""
