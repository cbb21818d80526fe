"""benchmarks/bench_trial.py runs end to end in its smoke mode."""
from tests.benchmarks.smoke import run


def test_bench_trial_smoke_prints_before_after_ratio():
    out = run("bench_trial.py", "--smoke")
    lines = out.splitlines()
    assert any(line.startswith("before") for line in lines) and any(line.startswith("after") for line in lines)
    ratio = next(line for line in lines if line.startswith("ratio before / after"))
    assert float(ratio.split(":")[1].split("x")[0]) > 0
