"""Schema 8: a gallery entry is one face of a photo, so a photo can hold several people.

Each row of ``images`` stands for one face of its photo: ``face`` is that face's
position among the photo's faces (largest first, as the detector ordered them) and
``landmarks`` its five points. One photo file may now back several rows, one per
face enrolled (a group photo enrolled face by face); the unique key moves from
``path`` to ``(path, face)``. Existing rows are the face they were embedded with:
the largest (``face`` 0), or the one an enrolled photo's ``face_box`` names, whose
position is taken from nothing stored and so is left 0 as well: each existing
photo held one row, so no two rows collide. No vector is recomputed.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

META = sa.table("meta", sa.column("key"), sa.column("value"))
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
"""Names for the unnamed unique constraint of release one (SQLite reflects it
without a name; PostgreSQL named it ``images_path_key``)."""


def _path_key(dialect: str) -> str:
    return "images_path_key" if dialect == "postgresql" else "uq_images_path"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    # storage.database runs migrations with SQLite's foreign keys off: the rebuild of
    # images does not cascade to its embeddings
    with op.batch_alter_table("images", recreate="auto", naming_convention=NAMING,
                              table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("face", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("landmarks", sa.JSON))
        batch.drop_constraint(_path_key(dialect), type_="unique")
        batch.create_unique_constraint("uq_image_face", ["path", "face"])
    op.create_index("ix_images_path", "images", ["path"])
    op.execute(META.update().where(META.c.key == "schema_version").values(value="8"))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    extra = op.get_bind().exec_driver_sql("SELECT COUNT(*) FROM images WHERE face <> 0").scalar()
    if extra:
        raise RuntimeError(f"{extra} gallery rows are second or later faces of a photo; schema 7 "
                           "holds one face per photo: remove them first")
    op.drop_index("ix_images_path", "images")
    with op.batch_alter_table("images", recreate="auto", naming_convention=NAMING,
                              table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint("uq_image_face", type_="unique")
        batch.create_unique_constraint(_path_key(dialect), ["path"])
        batch.drop_column("landmarks")
        batch.drop_column("face")
    op.execute(META.update().where(META.c.key == "schema_version").values(value="7"))
