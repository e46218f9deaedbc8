"""Schema 3: ids are never reused, and the gallery change log.

SQLite hands the largest deleted rowid to the next row of a table without
AUTOINCREMENT; an index snapshot that still held a vector under that id then named
the wrong person. The three gallery tables are rebuilt with AUTOINCREMENT, every
row keeping its id (PostgreSQL's sequences never go back: nothing to do there).
The change log starts at sequence 0: index snapshots written before it carry no
sequence and are rebuilt from the database when next opened.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

META = sa.table("meta", sa.column("key"), sa.column("value"))
GALLERY_TABLES = ("identities", "images", "embeddings")


def _autoincrement(on: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        if on:  # a sequence behind rows inserted with explicit ids would collide with them
            for table in GALLERY_TABLES:
                op.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"GREATEST((SELECT max(id) FROM {table}), 1))")
        return
    if op.get_bind().dialect.name != "sqlite":
        return
    # storage.database runs migrations with SQLite's foreign keys off: dropping the old
    # table would otherwise cascade to its children
    for table in GALLERY_TABLES:
        # a rebuild copies every row with its id; sqlite_sequence then starts at the
        # largest id copied
        with op.batch_alter_table(table, recreate="always",
                                  table_kwargs={"sqlite_autoincrement": on}):
            pass
    broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"rebuilding the gallery tables broke {len(broken)} references")


def upgrade() -> None:
    _autoincrement(True)
    op.create_table("gallery_changes",
                    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
                    sa.Column("kind", sa.String(16), nullable=False),
                    sa.Column("model_id", sa.Integer), sa.Column("embedding_id", sa.Integer),
                    sa.Column("image_id", sa.Integer),
                    sa.Column("at", sa.DateTime(timezone=True), nullable=False))
    head = op.create_table("gallery_change_head",
                           sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                           sa.Column("seq", sa.Integer, nullable=False))
    op.bulk_insert(head, [{"id": 1, "seq": 0}])
    op.execute(META.update().where(META.c.key == "schema_version").values(value="3"))


def downgrade() -> None:
    op.drop_table("gallery_change_head")
    op.drop_table("gallery_changes")
    _autoincrement(False)
    op.execute(META.update().where(META.c.key == "schema_version").values(value="2"))
