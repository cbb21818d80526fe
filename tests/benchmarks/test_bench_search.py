"""benchmarks/bench_search.py runs end to end in its smoke mode (and trial_time.py reads its searches)."""
import json

from search.config import load_smoke
from tests.benchmarks.smoke import run


def test_bench_search_smoke_compares_the_three_searches(tmp_path):
    out = run("bench_search.py", "--smoke", "--out", str(tmp_path))
    for name in ("default", "random", "no-rungs"):
        assert (tmp_path / name / "trials.parquet").is_file()
        assert any(line.startswith(name) for line in out.splitlines())
    minutes = load_smoke().benchmarks["bench_search"]["minutes"]  # the label the script prints
    assert f"best@{minutes:g}min" in out and f"default/this {minutes:g}min" in out
    assert "finished" in out and "stopped" in out

    # --reuse: the same experiments read back instead of searched again give the same table
    again = run("bench_search.py", "--smoke", "--out", str(tmp_path / "again"),
                "--reuse", *(f"{name}={tmp_path / name}" for name in ("default", "random", "no-rungs")))
    assert not (tmp_path / "again" / "default").exists()
    table = lambda text: [x for x in text.splitlines() if not x.startswith("==")]  # noqa: E731
    assert table(again) == table(out) and f"default: reused {tmp_path / 'default'}" in again

    # where the default search's trial time went: the parts add up to the trials' reported time
    parts = run("trial_time.py", str(tmp_path / "default")).splitlines()
    results = [f for f in (tmp_path / "default").glob("*/result.json") if f.stat().st_size]
    reported = sum(json.loads(x)["time_this_iter_s"] for f in results for x in f.read_text().splitlines() if x.strip())
    assert parts[0].startswith(f"{tmp_path / 'default'}: {len(results)} trials")
    seconds = [float(line.split()[-3]) for line in parts[1:]]
    shares = [float(line.split()[-1].rstrip("%")) for line in parts[1:]]
    assert len(seconds) == 4 and abs(sum(seconds) - reported) <= 2.0 and abs(sum(shares) - 100) < 0.5


def test_reuse_takes_a_run_with_the_samples_and_at_least_the_budget(tmp_path):
    import importlib.util

    import pytest

    from search import experiment
    from tests.benchmarks.smoke import REPO

    spec = importlib.util.spec_from_file_location("bench_search", REPO / "benchmarks" / "bench_search.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for name, budget in (("none", None), ("longer", 3600.0), ("same", 1800.0), ("shorter", 900.0)):
        (tmp_path / name).mkdir()
        experiment.write_run_file(tmp_path / name, {"num_samples": 50, "time_budget_s": budget})
    for name in ("none", "longer", "same"):  # an unbudgeted or longer run holds the budget's part
        assert bench.checked_reuse("default", tmp_path / name, 1800.0, 50) == tmp_path / name
    with pytest.raises(SystemExit, match="time_budget_s 900.0; this benchmark needs 50 and at least 1800"):
        bench.checked_reuse("default", tmp_path / "shorter", 1800.0, 50)
    with pytest.raises(SystemExit, match="num_samples 50"):
        bench.checked_reuse("default", tmp_path / "none", 1800.0, 40)
