"""benchmarks/bench_simulator.py runs end to end in its smoke mode."""
from tests.benchmarks.smoke import last_json, run


def test_bench_simulator_smoke_reports_both_speeds_and_their_ratio():
    figures = last_json(run("bench_simulator.py", "--smoke"))
    policies = [figures["random"], figures["sticky_artist"]]
    assert all(p["vectorized_steps_per_s"] > 0 and p["reference_steps_per_s"] > 0 for p in policies)
    assert figures["vectorized_steps_per_s"] == min(p["vectorized_steps_per_s"] for p in policies)
    ratio = figures["vectorized_steps_per_s"] / figures["reference_steps_per_s"]
    assert abs(figures["speedup"] - ratio) <= 0.05 + 1e-3 * ratio and figures["speedup"] > 1
