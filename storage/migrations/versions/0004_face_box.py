"""Schema 4: the face an enrolled photo stands for.

A photo with several faces is enrolled for one of them, chosen by the client; its
box is kept, so that the face shown (and re-prepared) for the photo is that one and
not the largest. ``NULL``: the largest face, or no detector (every photo before).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

META = sa.table("meta", sa.column("key"), sa.column("value"))


def upgrade() -> None:
    op.add_column("images", sa.Column("face_box", sa.JSON))
    op.execute(META.update().where(META.c.key == "schema_version").values(value="4"))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("face_box")
    op.execute(META.update().where(META.c.key == "schema_version").values(value="3"))
