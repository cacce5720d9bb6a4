"""Analyst one-liners on the loaded sample playlists."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from playlist_tools import db, models, queries, sample
from playlist_tools.queries import QueryError


@pytest.fixture(scope="module")
def loaded(server_url: URL) -> Iterator[Engine]:
    """One database with the sample, shared by this module's tests, which only read it
    (or write inside a transaction they roll back)."""
    with db.fresh_database(server_url, prefix="pt_test") as url:
        engine = db.create_engine(url)
        models.Base.metadata.create_all(engine)
        sample.load_sample(engine, progress=False)
        yield engine
        engine.dispose()


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return sample.read_sample()


def test_playlist_songs_in_order(loaded: Engine, frames: dict[str, pd.DataFrame]) -> None:
    songs = queries.playlist_songs(17, loaded)  # Heavy Metal Classic
    assert songs.columns.tolist() == ["position", *(c.name for c in models.Song.__table__.columns)]
    assert songs["position"].tolist() == list(range(1, 27))
    links = frames["playlist_song_association"]
    assert songs["song_id"].tolist() == sorted(links.loc[links["playlist_id"] == 17, "song_id"])
    assert str(songs["duration_ms"].dtype) == "Int32" and str(songs["title"].dtype) == "string"
    assert str(songs["unit_price"].dtype) == "decimal128(10, 2)[pyarrow]"


def test_playlist_songs_by_a_unique_title(loaded: Engine) -> None:
    pd.testing.assert_frame_equal(queries.playlist_songs("Grunge", loaded), queries.playlist_songs(16, loaded))


def test_playlist_songs_follows_position_not_song_id(loaded: Engine) -> None:
    with loaded.connect() as connection:
        connection.begin()
        connection.execute(sa.text(
            "UPDATE playlist_song_association SET position = 100 - position WHERE playlist_id = 16"
        ))
        reordered = queries.playlist_songs(16, connection)
        connection.rollback()
    assert reordered["song_id"].is_monotonic_decreasing
    assert queries.playlist_songs(16, loaded)["song_id"].is_monotonic_increasing


def test_an_empty_playlist_gives_an_empty_frame(loaded: Engine) -> None:
    songs = queries.playlist_songs(4, loaded)
    assert songs.empty and "title" in songs.columns


def test_an_ambiguous_title_asks_for_the_id(loaded: Engine) -> None:
    with pytest.raises(QueryError, match=r"^2 playlists are titled 'Music' \(ids 1, 8\); pass the id instead$"):
        queries.playlist_songs("Music", loaded)


@pytest.mark.parametrize("playlist", [99, "Nope", "x'; DROP TABLE songs; --"])
def test_an_unknown_playlist_is_named(loaded: Engine, playlist: int | str) -> None:
    with pytest.raises(QueryError, match=f"no playlist (has id|is titled) {playlist!r}"):
        queries.playlist_songs(playlist, loaded)
    with loaded.connect() as connection:  # the title was bound, not pasted into SQL
        assert connection.execute(sa.text("SELECT count(*) FROM songs")).scalar_one() == 3503


def test_song_playlists(loaded: Engine, frames: dict[str, pd.DataFrame]) -> None:
    on = queries.song_playlists(1, loaded)
    links = frames["playlist_song_association"]
    expected = links.loc[links["song_id"] == 1, "playlist_id"].tolist()
    assert on["playlist_id"].tolist() == sorted(expected) == [1, 8, 17]
    assert on.columns.tolist() == ["playlist_id", "title", "position"]
    assert on["title"].tolist() == ["Music", "Music", "Heavy Metal Classic"]


def test_song_playlists_of_an_unknown_song(loaded: Engine) -> None:
    with pytest.raises(QueryError, match="no song has id 99999"):
        queries.song_playlists(99999, loaded)


def test_playlist_summary(loaded: Engine, frames: dict[str, pd.DataFrame]) -> None:
    summary = queries.playlist_summary(loaded)
    assert summary.columns.tolist() == [
        "playlist_id", "title", "songs", "duration_ms", "duration", "top_genre", "top_genre_songs",
    ]
    assert summary["playlist_id"].tolist() == list(range(1, 19))
    assert summary["songs"].sum() == 8715
    assert (summary["songs"] == 0).sum() == 4 and summary.loc[summary["songs"] == 0, "top_genre"].isna().all()
    songs, links = frames["songs"], frames["playlist_song_association"]
    merged = links.merge(songs, on="song_id")
    expected_ms = merged.groupby("playlist_id")["duration_ms"].sum()
    grunge = summary.set_index("playlist_id").loc[16]
    assert grunge["duration_ms"] == expected_ms[16]
    assert grunge["duration"] == pd.Timedelta(milliseconds=int(expected_ms[16])).round("s")
    assert summary.set_index("playlist_id").loc[17, "top_genre"] == "Metal"


def test_playlist_summary_of_one_playlist(loaded: Engine) -> None:
    one = queries.playlist_summary(loaded, playlist="Heavy Metal Classic")
    assert one["playlist_id"].tolist() == [17]
    assert one.iloc[0]["songs"] == 26


def test_top_genre_ties_go_to_the_first_name(loaded: Engine) -> None:
    with loaded.connect() as connection:
        connection.begin()
        playlist_id = connection.execute(
            sa.text("INSERT INTO playlists (title) VALUES ('Tie') RETURNING playlist_id")
        ).scalar_one()
        # One Jazz song and one Blues song: a tie, which Blues wins by name.
        connection.execute(sa.text("""
            INSERT INTO playlist_song_association (playlist_id, song_id)
            SELECT :p, min(song_id) FROM songs WHERE genre IN ('Jazz', 'Blues') GROUP BY genre
        """), {"p": playlist_id})
        tie = queries.playlist_summary(connection, playlist=playlist_id)
        connection.rollback()
    assert tie[["songs", "top_genre", "top_genre_songs"]].iloc[0].tolist() == [2, "Blues", 1]


def test_one_liners_with_the_default_database_url(loaded: Engine) -> None:
    # A URL makes and disposes of its own engine.
    url = loaded.url
    assert len(queries.playlist_summary(url)) == 18
