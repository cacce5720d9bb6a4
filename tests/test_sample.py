"""The sample data: the synthetic generator, and the real Chinook playlists."""

from __future__ import annotations

import decimal

import pandas as pd
import pytest

from playlist_tools import models, sample

TABLES = ("songs", "playlists", "playlist_song_association")


# -- synthetic -----------------------------------------------------------------


def test_synthetic_columns_match_the_tables() -> None:
    frames = sample.synthetic(200, 7, seed=3)
    assert list(frames) == list(TABLES)
    for name in TABLES:
        table = models.Base.metadata.tables[name]
        assert frames[name].columns.tolist() == [column.name for column in table.columns]


def test_synthetic_is_deterministic_per_seed() -> None:
    first, again = sample.synthetic(500, 9, seed=42), sample.synthetic(500, 9, seed=42)
    for name in TABLES:
        pd.testing.assert_frame_equal(first[name], again[name])


def test_synthetic_differs_across_seeds() -> None:
    one, two = sample.synthetic(500, 9, seed=1), sample.synthetic(500, 9, seed=2)
    for name in ("songs", "playlist_song_association"):
        assert not one[name].equals(two[name])


def test_synthetic_keys_and_positions_are_consistent() -> None:
    frames = sample.synthetic(2_000, 30, seed=0)
    songs, playlists, links = frames["songs"], frames["playlists"], frames["playlist_song_association"]
    assert songs["song_id"].is_unique and playlists["playlist_id"].is_unique
    assert len(links) == 5_000
    assert not links.duplicated(["playlist_id", "song_id"]).any()
    assert links["song_id"].isin(songs["song_id"]).all()
    assert links["playlist_id"].isin(playlists["playlist_id"]).all()
    # Positions are 1..n in song_id order within each playlist (migration 0003's rule).
    ordered = links.sort_values(["playlist_id", "song_id"])
    expected = ordered.groupby("playlist_id").cumcount() + 1
    assert (ordered["position"] == expected).all()


def test_synthetic_dtypes_are_faithful() -> None:
    songs = sample.synthetic(300, 3, seed=0)["songs"]
    assert songs["song_id"].dtype == "int64"
    assert songs["size_bytes"].dtype == "Int64"
    assert isinstance(songs["title"].dtype, pd.StringDtype)
    assert {type(value) for value in songs["unit_price"]} == {decimal.Decimal}
    assert songs["composer"].isna().any() and songs["composer"].notna().any()


def test_synthetic_caps_links_at_every_pair() -> None:
    links = sample.synthetic(4, 3, n_links=100)["playlist_song_association"]
    assert len(links) == 12


@pytest.mark.parametrize("n_songs, n_playlists", [(0, 5), (5, 0), (0, 0)])
def test_synthetic_handles_empty_sizes(n_songs: int, n_playlists: int) -> None:
    frames = sample.synthetic(n_songs, n_playlists)
    assert len(frames["songs"]) == n_songs and len(frames["playlists"]) == n_playlists
    assert frames["playlist_song_association"].empty


def test_synthetic_refuses_negative_sizes() -> None:
    with pytest.raises(ValueError, match="n_songs=-1"):
        sample.synthetic(-1, 2)
