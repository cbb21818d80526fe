"""benchmarks/bench_rung_lists.py runs end to end in its smoke mode."""
from tests.benchmarks.smoke import last_json, run


def test_bench_rung_lists_smoke_runs_both_trials_with_the_same_lifts():
    figures = last_json(run("bench_rung_lists.py", "--smoke"))
    read, front = figures["as read"], figures["up front"]
    assert set(read["rung_lifts"]) == set(front["rung_lifts"]) == {"1"}  # smoke: one epoch, one rung
    # the same lists however they are computed: the same rung and final lifts
    assert figures["same_lifts"] and read["rung_lifts"] == front["rung_lifts"] and read["lift"] == front["lift"]
    assert 0 < read["rung_share"] < 1 and read["rung_seconds"] > 0
