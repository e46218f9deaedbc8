"""Schema 1, as the first release created it.

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table("meta", sa.Column("key", sa.String(64), primary_key=True),
                    sa.Column("value", sa.String(256), nullable=False))
    op.create_table("identities", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(255), nullable=False, unique=True))
    op.create_table("models", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(100), nullable=False, unique=True),
                    sa.Column("backbone", sa.String(64), nullable=False),
                    sa.Column("config", sa.JSON, nullable=False),
                    sa.Column("artifact", sa.String(1024), nullable=False),
                    sa.Column("threshold", sa.Float), sa.Column("threshold_rule", sa.String(64)),
                    sa.Column("created", TZ, nullable=False))
    op.create_table("images", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("path", sa.String(1024), nullable=False, unique=True),
                    sa.Column("sha256", sa.String(64), nullable=False, index=True),
                    sa.Column("identity_id", sa.Integer, sa.ForeignKey("identities.id"),
                              nullable=False, index=True),
                    sa.Column("width", sa.Integer), sa.Column("height", sa.Integer),
                    sa.Column("status", sa.String(16), nullable=False),
                    sa.Column("reason", sa.Text), sa.Column("flags", sa.String(255)),
                    sa.Column("updated", TZ, nullable=False))
    op.create_table("embeddings", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="CASCADE"),
                              nullable=False, index=True),
                    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"),
                              nullable=False, index=True),
                    sa.Column("vector", sa.LargeBinary, nullable=False),
                    sa.Column("created", TZ, nullable=False),
                    sa.UniqueConstraint("image_id", "model_id", name="uq_embedding_image_model"))
    op.create_table("job_runs", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("kind", sa.String(32), nullable=False, index=True),
                    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="SET NULL")),
                    sa.Column("params", sa.JSON, nullable=False),
                    sa.Column("status", sa.String(16), nullable=False),
                    sa.Column("started", TZ, nullable=False), sa.Column("ended", TZ),
                    sa.Column("counts", sa.JSON, nullable=False), sa.Column("error", sa.Text))
    op.create_table("pair_scores", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("run_id", sa.Integer, sa.ForeignKey("job_runs.id", ondelete="CASCADE"),
                              nullable=False, index=True),
                    sa.Column("first_image_id", sa.Integer,
                              sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
                    sa.Column("second_image_id", sa.Integer,
                              sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
                    sa.Column("label", sa.Integer, nullable=False),
                    sa.Column("distance", sa.Float, nullable=False))
    op.bulk_insert(sa.table("meta", sa.column("key"), sa.column("value")),
                   [{"key": "schema_version", "value": "1"}])


def downgrade() -> None:
    for table in ("pair_scores", "job_runs", "embeddings", "images", "models", "identities", "meta"):
        op.drop_table(table)
