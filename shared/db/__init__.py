"""Database access: the engine (one per process), sessions, and schema creation."""

from shared.db.engine import get_engine, reset_engine, session_scope

__all__ = ["get_engine", "reset_engine", "session_scope"]
