"""benchmarks/bench_trial.py runs end to end in its smoke mode."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_bench_trial_smoke_prints_before_after_ratio():
    out = run("bench_trial.py", "--smoke")
    lines = out.splitlines()
    assert any(line.startswith("before") for line in lines) and any(line.startswith("after") for line in lines)
    ratio = next(line for line in lines if line.startswith("ratio before / after"))
    assert float(ratio.split(":")[1].split("x")[0]) > 0
