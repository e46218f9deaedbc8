"""Schema 6: the quality of the face a gallery photo stands for (0-1), and of each
face `verifier cluster` embedded.

Reports split their pairs by it; ``NULL`` for the whole photo (no detector) and for
photos embedded before (they are rated when embedded again).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

META = sa.table("meta", sa.column("key"), sa.column("value"))


def upgrade() -> None:
    op.add_column("images", sa.Column("quality", sa.Float))
    op.add_column("face_vectors", sa.Column("quality", sa.Float))
    op.execute(META.update().where(META.c.key == "schema_version").values(value="6"))


def downgrade() -> None:
    for table in ("images", "face_vectors"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("quality")
    op.execute(META.update().where(META.c.key == "schema_version").values(value="5"))
