"""benchmarks/bench_search.py runs end to end in its smoke mode (and trial_time.py reads its searches)."""
import json

import pytest

from search.config import load_smoke
from tests.benchmarks.smoke import run


def test_bench_search_smoke_compares_the_four_searches(tmp_path):
    out = run("bench_search.py", "--smoke", "--out", str(tmp_path))
    for name in ("default-s0", "random-s0", "gp-s0", "no-rungs-s0"):
        assert (tmp_path / name / "trials.parquet").is_file()
        assert any(line.startswith(name) for line in out.splitlines())
    minutes = load_smoke().benchmarks["bench_search"]["minutes"]  # the label the script prints
    assert f"best@{minutes:g}min" in out and f"default/this {minutes:g}min" in out
    assert "finished" in out and "stopped" in out

    # --reuse: the same experiments read back instead of searched again give the same table
    again = run("bench_search.py", "--smoke", "--out", str(tmp_path / "again"),
                "--reuse", *(f"{name}={tmp_path / name}-s0" for name in ("default", "random", "gp", "no-rungs")))
    assert not (tmp_path / "again" / "default-s0").exists()
    table = lambda text: [x for x in text.splitlines() if not x.startswith("==")]  # noqa: E731
    assert table(again) == table(out) and f"default-s0: reused {tmp_path / 'default-s0'}" in again

    # where the default search's trial time went: the parts add up to the trials' reported time
    parts = run("trial_time.py", str(tmp_path / "default-s0")).splitlines()
    results = [f for f in (tmp_path / "default-s0").glob("*/result.json") if f.stat().st_size]
    reported = sum(json.loads(x)["time_this_iter_s"] for f in results for x in f.read_text().splitlines() if x.strip())
    assert parts[0].startswith(f"{tmp_path / 'default-s0'}: {len(results)} trials")
    seconds = [float(line.split()[-3]) for line in parts[1:]]
    shares = [float(line.split()[-1].rstrip("%")) for line in parts[1:]]
    assert len(seconds) == 4 and abs(sum(seconds) - reported) <= 2.0 and abs(sum(shares) - 100) < 0.5


def load_bench():
    import importlib.util

    from tests.benchmarks.smoke import REPO

    spec = importlib.util.spec_from_file_location("bench_search", REPO / "benchmarks" / "bench_search.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_reuse_takes_a_run_with_the_samples_at_least_the_budget_and_one_of_the_seeds(tmp_path):
    from search import experiment

    bench = load_bench()
    for name, budget, seed in (("none", None, 0), ("longer", 3600.0, 1), ("same", 1800.0, 0),
                               ("shorter", 900.0, 0)):
        (tmp_path / name).mkdir()
        experiment.write_run_file(tmp_path / name, {"num_samples": 50, "time_budget_s": budget, "seed": seed})
    for name, seed in (("none", 0), ("longer", 1), ("same", 0)):  # an unbudgeted or longer run holds its part
        assert bench.checked_reuse("default", tmp_path / name, 1800.0, 50, [0, 1]) == (seed, tmp_path / name)
    with pytest.raises(SystemExit, match="time_budget_s 900.0; this benchmark needs 50 and at least 1800"):
        bench.checked_reuse("default", tmp_path / "shorter", 1800.0, 50, [0])
    with pytest.raises(SystemExit, match="num_samples 50"):
        bench.checked_reuse("default", tmp_path / "none", 1800.0, 40, [0])
    with pytest.raises(SystemExit, match="it ran seed 1, not one of --seeds 0 2"):
        bench.checked_reuse("default", tmp_path / "longer", 1800.0, 50, [0, 2])
    with pytest.raises(SystemExit, match="both ran seed 0"):
        bench.reused_runs([f"default={tmp_path / 'none'}", f"default={tmp_path / 'same'}"], 1800.0, 50, [0])


def test_every_default_search_is_paired_with_every_other_search(capsys):
    import pandas as pd

    from search.report import LIFT

    bench = load_bench()

    def line(*trials):  # (end_s, lift) of finished trials
        return pd.DataFrame({"trial_id": [f"t{i}" for i in range(len(trials))], "status": "finished",
                             "end_s": [t for t, _ in trials], LIFT: [v for _, v in trials]})

    marks = [600.0, 1200.0, 1800.0]
    lines = {("default", 0): line((100, 150.0), (500, 210.0)), ("default", 1): line((900, 205.0)),
             ("random", 0): line((200, 180.0), (1500, 208.0)), ("random", 1): line((300, 200.0))}
    results = {key: {"line": ln, "row": {f"best@{m / 60:g}min": bench.best_at(ln, m) for m in marks}}
               for key, ln in lines.items()}
    table = bench.report(results, marks)
    out = capsys.readouterr().out
    assert list(table.index) == ["default-s0", "default-s1", "random-s0", "random-s1"]
    assert "default-s0 reached random-s0's final best (+208.0%, its own at 25.0 min) after 8.3 min = 0.28" in out
    assert "default-s0 reached random-s1's final best (+200.0%, its own at 5.0 min) after 8.3 min" in out
    assert "default-s1 reached random-s1's final best (+200.0%, its own at 5.0 min) after 15.0 min" in out
    assert "default-s1 never reached random-s0's final best (+208.0%)" in out
    assert "(same seed: shared startup draws)" in out
    assert "within a third of the budget (3x sooner) in 2 of 4 pairs" in out
    # the ratio columns divide by the default searches' median best at each mark
    assert table.loc["random-s1", "default/this 30min"] == pytest.approx((210.0 + 205.0) / 2 / 200.0)
