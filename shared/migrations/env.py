"""Alembic's environment for the registry: always run on a connection the caller opened
(shared.registry_migrations), against the tables declared in shared.registry_schema."""

from alembic import context

from shared.registry_schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
