"""Schema 7: one word for a finished run, and run numbers per kind.

Embed and evaluate runs used to finish ``ok`` while cluster runs finished ``done``;
every finished run is now ``done``. Runs were numbered by one counter shared by
every kind (a fresh workspace's first cluster run could be "cluster run 4"): each
run now has a ``number`` among the runs of its kind, given to existing runs in the
order they were started.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

META = sa.table("meta", sa.column("key"), sa.column("value"))


def upgrade() -> None:
    op.execute("UPDATE job_runs SET status = 'done' WHERE status = 'ok'")
    op.add_column("job_runs", sa.Column("number", sa.Integer))
    op.execute("UPDATE job_runs SET number = (SELECT COUNT(*) FROM job_runs AS earlier "
               "WHERE earlier.kind = job_runs.kind AND earlier.id <= job_runs.id)")
    op.create_index("ix_job_runs_kind_number", "job_runs", ["kind", "number"], unique=True)
    op.execute(META.update().where(META.c.key == "schema_version").values(value="7"))


def downgrade() -> None:
    op.drop_index("ix_job_runs_kind_number", "job_runs")
    op.drop_column("job_runs", "number")  # ALTER TABLE ... DROP COLUMN: SQLite 3.35 and later
    op.execute("UPDATE job_runs SET status = 'ok' WHERE status = 'done' AND kind <> 'cluster'")
    op.execute(META.update().where(META.c.key == "schema_version").values(value="6"))
