"""benchmarks/bench_search.py runs end to end in its smoke mode."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_bench_search_smoke_compares_the_three_searches(tmp_path):
    out = run("bench_search.py", "--smoke", "--out", str(tmp_path))
    for name in ("default", "random", "no-rungs"):
        assert (tmp_path / name / "trials.parquet").is_file()
        assert any(line.startswith(name) for line in out.splitlines())
    assert "best@1min" in out and "default/this 1min" in out and "finished" in out and "stopped" in out
