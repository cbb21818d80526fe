"""benchmarks/bench_serving_search.py runs end to end in its smoke mode."""
import math

from tests.benchmarks.smoke import last_json, run


def test_bench_serving_search_smoke_compares_the_configured_search_with_the_whole_grid():
    out = run("bench_serving_search.py", "--smoke")
    s = last_json(out)
    assert s["trials"] >= 1 and 0 <= s["same_choice"] <= s["trials"]
    # a stepped knob tries a subset of its grid: never more candidates than the whole grid
    assert 1 <= s["configured/tried"] <= s["whole grid/tried"]
    assert s["seconds_ratio"] > 0 and math.isclose(
        s["eval_lift_diff"], s["configured/eval_lift"] - s["whole grid/eval_lift"], abs_tol=1e-9)
    rows = [line for line in out.splitlines() if "  |  " in line]  # one per trial
    assert len(rows) == s["trials"]
