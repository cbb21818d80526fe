"""benchmarks/calibrate_world.py runs end to end in its smoke mode."""
from sim_bridge.abtest import TARGETS

from tests.benchmarks.smoke import last_json, run


def test_calibrate_world_smoke_measures_the_three_baselines():
    rows = last_json(run("calibrate_world.py", "--smoke"))
    assert set(rows) == {"random", "sticky_artist", "toppop_catalog"}  # the smoke world has no logged top tracks
    for name, row in rows.items():
        assert row["time"] >= 1.0 and row["tracks"] >= 6.0  # first track 1.0; at least session_budget (5) steps
        assert 0 < row["time_se"] < row["time"] and 0 < row["tracks_se"] < row["tracks"]
        target = TARGETS[name.removesuffix("_catalog")]
        assert abs(row["off_pct"] - 100 * (row["time"] / target - 1)) < 1e-9
