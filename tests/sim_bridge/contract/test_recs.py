"""botify recommendation files: round trips, the exact line format, malformed input."""
import json
import time

import numpy as np
import pandas as pd
import pytest

from sim_bridge.contract import columns as C
from sim_bridge.contract.recs import (
    RecFileError,
    read_item_recs,
    read_top_tracks,
    read_user_recs,
    top_tracks_by_time,
    write_item_recs,
    write_top_tracks,
    write_user_recs,
)
from sim_bridge.policies import TopPop
from sim_bridge.policy_specs import make_policy


def assert_recs_equal(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert b[k].dtype == np.int64


def test_user_recs_round_trip_and_format(tmp_path):
    recs = {3: np.array([5, 1, 9]), 1: np.array([2, 2, 7])}
    write_user_recs(recs, tmp_path / "recs.json")
    lines = (tmp_path / "recs.json").read_text().splitlines()
    assert lines == ['{"user": 3, "tracks": [5, 1, 9]}', '{"user": 1, "tracks": [2, 2, 7]}']
    assert_recs_equal(recs, read_user_recs(tmp_path / "recs.json"))


def test_item_recs_round_trip_ragged_and_empty(tmp_path):
    recs = {0: np.array([4, 3]), 1: np.array([], dtype=np.int64), 2: np.array([1])}
    write_item_recs(recs, tmp_path / "i2i.json")
    assert json.loads((tmp_path / "i2i.json").read_text().splitlines()[0]) == {
        "item_id": 0, "recommendations": [4, 3]}
    assert_recs_equal(recs, read_item_recs(tmp_path / "i2i.json"))


def test_dataframe_inputs(tmp_path):
    wide = pd.DataFrame({"user": [4, 8], "tracks": [[1, 2], [3, 4]]})
    long = pd.DataFrame({"user": [4, 4, 8, 8], "track": [1, 2, 3, 4]})
    write_user_recs(wide, tmp_path / "a.json")
    write_user_recs(long, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
    assert_recs_equal({4: np.array([1, 2]), 8: np.array([3, 4])}, read_user_recs(tmp_path / "a.json"))


@pytest.mark.parametrize(
    "bad, pattern",
    [
        ('{"user": 1, "tracks": [1, "x"]}', r"recs\.json:2: field 'tracks' must be a list of integers"),
        ('{"user": 1, "tracks": [1.5]}', r"recs\.json:2: field 'tracks'"),
        ('{"user": "1", "tracks": [1]}', r"recs\.json:2: field 'user' must be an integer"),
        ('{"tracks": [1]}', r"recs\.json:2: missing required field 'user'"),
        ('{"user": 0, "tracks": [1]}', r"recs\.json:2: field 'user' repeats 0"),
        ('{"user": 1, "tracks": [[1], [1, 2]]}', r"recs\.json:2: field 'tracks'"),
        ('{"user": 1, "tracks": [1', r"recs\.json:2: invalid JSON"),
    ],
)
def test_malformed_user_recs(tmp_path, bad, pattern):
    path = tmp_path / "recs.json"
    path.write_text('{"user": 0, "tracks": [1, 2]}\n' + bad + "\n")
    with pytest.raises(RecFileError, match=pattern):
        read_user_recs(path)


def test_write_rejects_float_lists(tmp_path):
    with pytest.raises(ValueError, match="integer"):
        write_user_recs({1: np.array([0.5])}, tmp_path / "x.json")


def test_large_item_file_is_fast(tmp_path):
    rng = np.random.default_rng(0)
    recs = {i: rng.integers(0, 50_000, 100) for i in range(50_000)}
    start = time.perf_counter()
    write_item_recs(recs, tmp_path / "i2i.json")
    back = read_item_recs(tmp_path / "i2i.json")
    assert time.perf_counter() - start < 15  # ~1.5 s on one core; generous for shared CI
    np.testing.assert_array_equal(back[49_999], recs[49_999])
    assert len(back) == 50_000


# --------------------------------------------------------------------------- top_tracks.json
# botify's TopPop: the tracks with the most summed logged listening time.


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
