"""botify's TopPop: the tracks with the most summed logged listening time."""
import numpy as np
import pandas as pd
import pytest

from sim_bridge.contract import columns as C
from sim_bridge.policies import TopPop, make_policy
from sim_bridge.contract.recs import read_top_tracks, top_tracks_by_time, write_top_tracks


def test_top_tracks_rank_by_summed_time_ties_by_id():
    events = pd.DataFrame({C.TRACK: [5, 3, 5, 7, 3, 9], C.TIME: [0.5, 1.0, 0.5, 0.2, 0.0, 1.0]})
    # sums: 3 → 1.0, 5 → 1.0, 7 → 0.2, 9 → 1.0; ties at 1.0 by id
    assert top_tracks_by_time(events, k=3).tolist() == [3, 5, 9]


def test_round_trip_and_bad_file(tmp_path):
    write_top_tracks(np.array([4, 1, 2]), tmp_path / "top_tracks.json")
    assert read_top_tracks(tmp_path / "top_tracks.json").tolist() == [4, 1, 2]
    (tmp_path / "bad.json").write_text('{"tracks": [1]}')
    with pytest.raises(ValueError, match="bad.json: expected a non-empty JSON list"):
        read_top_tracks(tmp_path / "bad.json")


def test_toppop_needs_logged_top_tracks(smoke_world, tmp_path):
    with pytest.raises(ValueError, match="no top_tracks.json"):
        make_policy("toppop", smoke_world)
    write_top_tracks(np.array([7, 3]), tmp_path / "top.json")
    policy = make_policy(f"toppop:{tmp_path / 'top.json'}", smoke_world)
    assert policy.name == "toppop" and policy.top.tolist() == [7, 3]
    assert make_policy("toppop_catalog", smoke_world).name == "toppop_catalog"
    assert TopPop(smoke_world.catalog).top[0] == int(np.argmax(smoke_world.catalog.pop))
