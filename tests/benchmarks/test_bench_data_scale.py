"""benchmarks/bench_data_scale.py runs end to end in its smoke mode."""
from tests.benchmarks.smoke import last_json, run


def test_bench_data_scale_smoke_measures_both_scales_and_their_ratios():
    figures = last_json(run("bench_data_scale.py", "--smoke"))
    small, big = figures["default"], figures["seed_scale"]
    assert big["sessions"] == 4 * small["sessions"] and big["events"] > 3 * small["events"]
    for scale in (small, big):
        assert scale["users"] > 0 and scale["tracks_5"] > 0 and scale["positives"] >= scale["sessions"]
        assert scale["triplets"] >= scale["train_triplets"] > 0 and scale["peak_rss_gb"] > 0
        assert scale["s_per_epoch"] > 0 and scale["trial_s"] > 0 and scale["trial_lift_lower"] <= scale["trial_lift"]
    assert abs(figures["ratios"]["events"] - big["events"] / small["events"]) < 1e-9
