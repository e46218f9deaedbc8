"""Schema 2: API keys of the service; the upload name of enrolled photos.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

META = sa.table("meta", sa.column("key"), sa.column("value"))


def upgrade() -> None:
    op.create_table("api_keys", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(100), nullable=False, unique=True),
                    sa.Column("scope", sa.String(16), nullable=False),
                    sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
                    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("last_used", sa.DateTime(timezone=True)),
                    sa.Column("revoked", sa.DateTime(timezone=True)))
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("source", sa.String(255)))
    op.execute(META.update().where(META.c.key == "schema_version").values(value="2"))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("source")
    op.drop_table("api_keys")
    op.execute(META.update().where(META.c.key == "schema_version").values(value="1"))
