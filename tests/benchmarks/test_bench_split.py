"""benchmarks/bench_split.py runs end to end in its smoke mode."""
from tests.benchmarks.smoke import last_json, run

import numpy as np


def test_bench_split_smoke_trains_both_splits_and_replays_early_stopping():
    out = last_json(run("bench_split.py", "--smoke"))
    assert set(out) == {"random", "time"}
    for fig in out.values():
        assert len(fig["train"]) == len(fig["val"]) == 2
        assert np.all(np.isfinite(fig["val"])) and 1 <= fig["best_epoch"] <= 2
        assert fig["best_epoch"] == int(np.argmin(fig["val"])) + 1
        stops = fig["stop_epoch_by_min_delta"]
        assert "0.001" in stops and all(1 <= e <= 2 for e in stops.values())
        # a larger min_delta never stops later
        ordered = [stops[k] for k in sorted(stops, key=float)]
        assert ordered == sorted(ordered, reverse=True)
    assert out["random"]["val"] != out["time"]["val"]
