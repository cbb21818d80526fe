"""botify event logs: build, round trips, folder reading, malformed lines, sessionization."""
import json

import numpy as np
import pandas as pd
import pytest

from sim_bridge.contract import columns as C
from sim_bridge.contract.events import build_events, sessionize
from sim_bridge.contract.logs import LogFormatError, read_logs, write_logs

EXP = "STICKY"


def tiny_events() -> pd.DataFrame:
    """Two sessions of user 7 (3 + 2 events) and one of user 9 (2 events), arms C and T1."""
    return build_events(
        session=np.array([0, 0, 0, 1, 1, 2, 2]),
        user=np.array([7, 7, 7, 7, 7, 9, 9]),
        track=np.array([10, 11, 12, 20, 21, 30, 31]),
        time=np.array([1.0, 0.5, 0.25, 1.0, 0.0, 1.0, 0.75]),
        recommendation=np.array([11, 12, -1, 21, -1, 31, -1]),
        timestamp=np.array([1000, 2000, 3000, 4000, 5000, 1500, 2500]),
        latency=np.array([0.001, 0.002, 0.003, 0.001, 0.001, 0.004, 0.00001]),
        arm=np.array([0, 0, 0, 0, 0, 1, 1]),
        experiment=EXP,
        arm_names=["C", "T1"],
    )


def test_build_events_columns_and_messages():
    ev = tiny_events()
    assert list(ev.columns[: len(C.EVENT_COLUMNS)]) == list(C.EVENT_COLUMNS)
    assert list(ev[C.MESSAGE]) == ["next", "next", "last", "next", "last", "next", "last"]
    assert ev[C.RECOMMENDATION].isna().tolist() == [False, False, True, False, True, False, True]
    assert ev[C.EXPERIMENTS].tolist()[5] == {EXP: "T1"}
    assert list(ev[C.ARM]) == ["C"] * 5 + ["T1"] * 2
    assert ev[C.RECOMMENDATION].dtype == "Int64"


def test_build_events_arm_strings_equal_codes():
    ev = tiny_events()
    ev2 = build_events(*(ev[c].to_numpy() for c in (C.SESSION, C.USER, C.TRACK, C.TIME)),
                       np.array([11, 12, -1, 21, -1, 31, -1]), ev[C.TIMESTAMP].to_numpy(),
                       ev[C.LATENCY].to_numpy(), ev[C.ARM].to_numpy(dtype=object), EXP)
    pd.testing.assert_frame_equal(ev, ev2)


@pytest.mark.parametrize("name", ["events.parquet", "events.jsonl", "data.json"])
def test_round_trip(tmp_path, name):
    ev = tiny_events()
    write_logs(ev, tmp_path / name)
    back = read_logs(tmp_path / name)
    pd.testing.assert_frame_equal(back, ev[list(C.EVENT_COLUMNS)])
    assert back[C.MESSAGE].dtype == "str"
    assert not list(tmp_path.glob(".*"))  # no temp file left behind


def test_json_lines_are_botify_records(tmp_path):
    write_logs(tiny_events(), tmp_path / "data.json")
    lines = (tmp_path / "data.json").read_text().splitlines()
    first, last = json.loads(lines[0]), json.loads(lines[2])
    assert list(first) == list(C.EVENT_COLUMNS)  # botify's key order
    assert first == {"message": "next", "timestamp": 1000, "user": 7, "track": 10, "time": 1.0,
                     "latency": 0.001, "recommendation": 11, "experiments": {EXP: "C"}}
    assert '"time": 1.0,' in lines[0]  # integral floats keep their ".0", as Python writes them
    assert last["message"] == "last" and last["recommendation"] is None
    assert json.loads(lines[6])["latency"] == 0.00001  # exact round trip of a tiny float


def test_read_tolerates_missing_optional_fields(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(
        '{"message": "next", "timestamp": 5, "user": 1, "track": 2, "time": 1, "recommendation": 3}\n'
        "\n"
        '{"message": "last", "timestamp": 6, "user": 1, "track": 3, "time": 0.5, "latency": 0.2,'
        ' "experiments": {"A": "T1", "B": "C"}}\n'
    )
    ev = read_logs(path)
    assert ev[C.LATENCY].tolist() == [0.0, 0.2]
    assert ev[C.EXPERIMENTS].tolist() == [{}, {"A": "T1", "B": "C"}]
    assert ev[C.RECOMMENDATION].tolist() == [3, pd.NA]
    assert ev[C.TIME].dtype == np.float64 and ev[C.TIME].tolist() == [1.0, 0.5]


def test_read_folder_of_containers(tmp_path):
    ev = tiny_events()
    write_logs(ev.iloc[:3], tmp_path / "logs" / "c2" / "data.json")
    write_logs(ev.iloc[3:], tmp_path / "logs" / "c1" / "data.json")
    back = read_logs(tmp_path / "logs")
    expected = pd.concat([ev.iloc[3:], ev.iloc[:3]], ignore_index=True)  # c1 sorts before c2
    pd.testing.assert_frame_equal(back, expected[list(C.EVENT_COLUMNS)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no log files"):
        read_logs(tmp_path / "empty")


GOOD = '{"message": "next", "timestamp": 1, "user": 2, "track": 3, "time": 1.0, "recommendation": 4}\n'


@pytest.mark.parametrize(
    "bad, pattern",
    [
        ('{"message": "next", "timestamp": 1, "user": 2, "track": 3, "time": "abc"}',
         r"data\.json:3: field 'time' must be a number, got \"abc\""),
        ('{"message": "next", "timestamp": 1, "user": 2, "track": 3}', r"data\.json:3: .*'time'"),
        ('{"message": "next", "timestamp": 1, "user": 2.5, "track": 3, "time": 1}',
         r"data\.json:3: field 'user' must be an integer, got 2\.5"),
        ('{"message": "stop", "timestamp": 1, "user": 2, "track": 3, "time": 1}',
         r"data\.json:3: field 'message'"),
        ('{"message": "next", "timestamp": 1, "user": 2, "track": 3, "time": NaN}',
         r"data\.json:3: field 'time'"),
        ('{"message": "next", "timestamp": 1, "user": 2, "track": 3, "time": 1, "experiments": {"A": 1}}',
         r"data\.json:3: field 'experiments'"),
        ('{"message": "next", "timestamp": 1, "user": 2, "track": 3, "time": 1', r"data\.json:3: invalid JSON"),
    ],
)
def test_malformed_line_is_reported(tmp_path, bad, pattern):
    path = tmp_path / "c1" / "data.json"
    path.parent.mkdir()
    path.write_text(GOOD + GOOD + bad + "\n" + GOOD)
    with pytest.raises(LogFormatError, match=pattern):
        read_logs(tmp_path)


def test_sessionize_tiny_log():
    ev = tiny_events().sample(frac=1.0, random_state=3)  # file order must not matter
    s = sessionize(ev, EXP)
    assert list(s.columns) == [C.SESSION, C.USER, C.ARM, C.TIME, C.TRACKS, C.LATENCY, C.TRUNCATED]
    assert s[C.USER].tolist() == [7, 7, 9]
    assert s[C.ARM].tolist() == ["C", "C", "T1"]
    np.testing.assert_allclose(s[C.TIME], [1.0 + 0.5 + 0.25, 1.0 + 0.0, 1.0 + 0.75])
    assert s[C.TRACKS].tolist() == [3, 2, 2]
    np.testing.assert_allclose(s[C.LATENCY], [0.001 + 0.002 + 0.003, 0.001 + 0.001, 0.004 + 0.00001])
    assert s[C.SESSION].tolist() == [0, 1, 2] and not s[C.TRUNCATED].any()


def test_sessionize_open_final_session_and_no_experiment():
    ev = tiny_events().iloc[:4]  # user 7: a closed session of 3, then one open event
    s = sessionize(ev, None)
    assert s[C.TRACKS].tolist() == [3, 1]
    np.testing.assert_allclose(s[C.TIME], [1.75, 1.0])
    assert s[C.ARM].tolist() == ["", ""]
    assert sessionize(ev, "OTHER")[C.ARM].tolist() == ["", ""]


def test_sessionize_after_round_trip_matches_simulator_sessions(tmp_path):
    rng = np.random.default_rng(0)
    n_sessions, per = 200, 5
    session = np.repeat(np.arange(n_sessions), per)
    rec = rng.integers(0, 100, session.size)
    rec[per - 1 :: per] = -1
    ev = build_events(session, session % 37, rng.integers(0, 100, session.size),
                      np.round(rng.random(session.size), 2), rec, np.arange(session.size) * 10,
                      rng.random(session.size), np.where(session % 37 % 2, "T1", "C"), EXP)
    write_logs(ev, tmp_path / "data.json")
    s = sessionize(read_logs(tmp_path / "data.json"), EXP)
    direct = ev.groupby(C.SESSION)[C.TIME].sum().sort_values().to_numpy()
    assert len(s) == n_sessions and (s[C.TRACKS] == per).all()
    np.testing.assert_allclose(np.sort(s[C.TIME].to_numpy()), direct)
