"""Initial migration

Revision ID: 0001
Revises: 
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('playlists',
    sa.Column('playlist_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('playlist_id', name=op.f('pk_playlists'))
    )
    op.create_index(op.f('ix_playlists_title'), 'playlists', ['title'], unique=False)
    op.create_table('songs',
    sa.Column('song_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('artist', sa.String(length=120), nullable=True),
    sa.Column('album', sa.String(length=160), nullable=True),
    sa.Column('genre', sa.String(length=120), nullable=True),
    sa.Column('composer', sa.String(length=220), nullable=True),
    sa.Column('media_type', sa.String(length=120), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('unit_price', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.PrimaryKeyConstraint('song_id', name=op.f('pk_songs'))
    )
    op.create_index(op.f('ix_songs_artist'), 'songs', ['artist'], unique=False)
    op.create_table('playlist_song_association',
    sa.Column('playlist_id', sa.Integer(), nullable=False),
    sa.Column('song_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['playlist_id'], ['playlists.playlist_id'], name=op.f('fk_playlist_song_association_playlist_id_playlists'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['song_id'], ['songs.song_id'], name=op.f('fk_playlist_song_association_song_id_songs'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('playlist_id', 'song_id', name=op.f('pk_playlist_song_association'))
    )
    op.create_index(op.f('ix_playlist_song_association_song_id'), 'playlist_song_association', ['song_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_playlist_song_association_song_id'), table_name='playlist_song_association')
    op.drop_table('playlist_song_association')
    op.drop_index(op.f('ix_songs_artist'), table_name='songs')
    op.drop_table('songs')
    op.drop_index(op.f('ix_playlists_title'), table_name='playlists')
    op.drop_table('playlists')
