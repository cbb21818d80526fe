"""Run a benchmark script from the repository root and read what it prints."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(script: str, *args: str, timeout: float = 900) -> str:
    """stdout of ``benchmarks/<script> args``; fails the test with its output tail on a non-zero exit."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def last_json(out: str) -> dict:
    """The JSON object on the last printed line (every benchmark ends with one)."""
    return json.loads(out.strip().splitlines()[-1])
