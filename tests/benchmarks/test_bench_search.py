"""benchmarks/bench_search.py runs end to end in its smoke mode."""
from tests.benchmarks.smoke import run


def test_bench_search_smoke_compares_the_three_searches(tmp_path):
    out = run("bench_search.py", "--smoke", "--out", str(tmp_path))
    for name in ("default", "random", "no-rungs"):
        assert (tmp_path / name / "trials.parquet").is_file()
        assert any(line.startswith(name) for line in out.splitlines())
    assert "best@1min" in out and "default/this 1min" in out and "finished" in out and "stopped" in out
