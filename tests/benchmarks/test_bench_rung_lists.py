"""benchmarks/bench_rung_lists.py runs end to end in its smoke mode."""
from tests.benchmarks.smoke import last_json, run


def test_bench_rung_lists_smoke_runs_both_trials_and_compares_their_rungs():
    figures = last_json(run("bench_rung_lists.py", "--smoke"))
    exact, approx = figures["exact"], figures["approximate"]
    assert set(exact["rung_lifts"]) == set(approx["rung_lifts"]) == {"1"}  # smoke: one epoch, one rung
    assert figures["rung_lift_diffs"] == [approx["rung_lifts"]["1"] - exact["rung_lifts"]["1"]]
    assert 0 < exact["rung_share"] < 1 and exact["rung_seconds"] > 0
    assert exact["lift"] == approx["lift"]  # the same weights, served on exact lists after training
