"""Alembic environment: run on the connection :func:`storage.database.open_database` passes."""
from alembic import context

from storage.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
