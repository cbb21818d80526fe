"""benchmarks/bench_serve.py runs end to end in its smoke mode."""
from search.config import load_smoke

from tests.benchmarks.smoke import last_json, run


def test_bench_serve_smoke_drives_the_service_and_loses_no_line():
    smoke = load_smoke().benchmarks["bench_serve"]
    figures = last_json(run("bench_serve.py", "--smoke"))
    assert figures["world"] == "smoke" and figures["sessions"] == smoke["sessions"]
    assert figures["lost_lines"] == 0 and figures["simulator_steps_per_s"] > 0
    assert {r["concurrency"] for r in figures["http"]} == set(smoke["concurrency"])
    assert figures["best_requests_per_s"] == max(r["requests_per_s"] for r in figures["http"]) > 0
