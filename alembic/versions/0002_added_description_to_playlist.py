"""Added description to Playlist

Revision ID: 0002
Revises: 0001
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('playlists', sa.Column('description', sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema.

    Lossy: every playlist's description is dropped with the column.
    Playlists, songs and their links are kept.
    """
    op.drop_column('playlists', 'description')
