"""Schema 5: face vectors of unlabeled photos, and cluster runs.

``face_vectors`` holds every face `verifier cluster` embedded, by photo content and
model, so that a rerun embeds only new photos; ``clusters`` and
``cluster_members`` record each run's groups (the run itself is a ``job_runs`` row
of kind ``cluster``).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

META = sa.table("meta", sa.column("key"), sa.column("value"))


def upgrade() -> None:
    op.create_table(
        "face_vectors", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("face", sa.Integer, nullable=False),
        sa.Column("faces", sa.Integer, nullable=False),
        sa.Column("box", sa.JSON), sa.Column("score", sa.Float),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("sha256", "model_id", "face", name="uq_face_vector"))
    op.create_table(
        "clusters", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("job_runs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("cluster", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("suggestion", sa.String(255)), sa.Column("distance", sa.Float),
        sa.Column("named", sa.String(255)),
        sa.UniqueConstraint("run_id", "cluster", name="uq_cluster_run"))
    op.create_table(
        "cluster_members", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("job_runs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("cluster", sa.Integer),
        sa.Column("face_id", sa.Integer, sa.ForeignKey("face_vectors.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("photo", sa.String(1024), nullable=False),
        sa.Column("source", sa.String(255)))
    op.execute(META.update().where(META.c.key == "schema_version").values(value="5"))


def downgrade() -> None:
    op.drop_table("cluster_members")
    op.drop_table("clusters")
    op.drop_table("face_vectors")
    op.execute(META.update().where(META.c.key == "schema_version").values(value="4"))
