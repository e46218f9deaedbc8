"""Alembic migrations of the gallery database (``alembic_version`` records the revision)."""
