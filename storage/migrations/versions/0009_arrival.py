"""Schema 9: the group of every face of a cluster run, small groups included.

``cluster_members.label`` is the group a face joined when it arrived, also where
that group is under the run's minimum size (``cluster`` is then ``NULL``: shown as
unclustered). Members are stored in arrival order, so a later run continues the
groups where this one left them (:mod:`verifier.assignment`). Runs made before
have no labels; the first run after the upgrade groups its faces afresh.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

META = sa.table("meta", sa.column("key"), sa.column("value"))


def upgrade() -> None:
    op.add_column("cluster_members", sa.Column("label", sa.Integer))
    op.execute(META.update().where(META.c.key == "schema_version").values(value="9"))


def downgrade() -> None:
    with op.batch_alter_table("cluster_members") as batch:
        batch.drop_column("label")
    op.execute(META.update().where(META.c.key == "schema_version").values(value="8"))
