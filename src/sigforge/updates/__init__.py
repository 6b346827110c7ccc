"""Signed updates: staged apply with backup, migrate, switch, health check and automatic rollback (a later issue)."""
