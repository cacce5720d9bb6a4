"""Renamed media_type to file_format

Written by hand: autogenerate sees a rename as a dropped column plus a new
empty one, which would lose every value. ALTER TABLE ... RENAME keeps them.

Revision ID: 0004
Revises: 0003
"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.alter_column('songs', 'media_type', new_column_name='file_format')


def downgrade() -> None:
    """Downgrade schema."""
    op.alter_column('songs', 'file_format', new_column_name='media_type')
