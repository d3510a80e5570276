"""Database access: the engine (one per process), sessions for writing and for reading, and schema creation."""

from shared.db.engine import get_engine, read_session, reader_engine, reset_engine, session_scope

__all__ = ["get_engine", "read_session", "reader_engine", "reset_engine", "session_scope"]
