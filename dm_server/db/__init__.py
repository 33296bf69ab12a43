"""Persistence: SQLAlchemy 2 models (one module per aggregate), sessions, the subtree scope."""
