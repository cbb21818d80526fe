"""Where a search's trial time went: training epochs, a trial's start with its first rung, later
rungs, and the final report (serving search, paired A/B, checkpoint).

    python benchmarks/trial_time.py runs/NAME [runs/OTHER ...]
    python benchmarks/trial_time.py --smoke        # a smoke search (search.run --smoke-test), then its split

Reads each trial's ``result.json`` (Tune's per-report lines): every per-epoch report carries the
epoch's own training seconds (``seconds``) and Tune's ``time_this_iter_s`` (everything since the
previous report), so the difference is what came around the epoch — at the first report the
trial's start (actor, inputs, training data) and its first rung, later the rungs; the final
report's ``time_this_iter_s`` is the serving search, the A/B and the checkpoint. Prints, per
experiment, the trial count, the seconds per trial and each part's share.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from search.config import parse_benchmark_args  # noqa: E402

PARTS = ("epochs", "start + first rung", "later rungs", "final report")


def trial_parts(result_file: Path) -> dict[str, float]:
    """Seconds of each of :data:`PARTS` in one trial's ``result.json``."""
    parts = dict.fromkeys(PARTS, 0.0)
    lines = [line for line in result_file.read_text().splitlines() if line.strip()]
    for i, row in enumerate(json.loads(line) for line in lines):
        spent, epoch = float(row["time_this_iter_s"]), float(row.get("seconds") or 0.0)
        if row.get("final"):
            parts["final report"] += spent
            continue
        parts["epochs"] += epoch
        parts["start + first rung" if i == 0 else "later rungs"] += spent - epoch
    return parts


def experiment_parts(exp: Path) -> tuple[int, int, dict[str, float]]:
    """(trials with a report, finished trials, seconds per part summed over the trials)."""
    total, trials, finished = dict.fromkeys(PARTS, 0.0), 0, 0
    for result in sorted(exp.glob("*/result.json")):
        if not result.stat().st_size:
            continue
        parts = trial_parts(result)
        trials += 1
        finished += parts["final report"] > 0
        for key, value in parts.items():
            total[key] += value
    return trials, finished, total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiments", nargs="*", type=Path)
    p.add_argument("--smoke", action="store_true", help="run a smoke search (tiny world) and split its time")
    args = parse_benchmark_args(p, "trial_time", argv)
    if args.smoke:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "search.run", "--smoke-test", "--storage-path", tmp, "--name", "smoke"],
                           cwd=REPO, check=True, capture_output=True)
            return report([Path(tmp) / "smoke"])
    if not args.experiments:
        p.error("name at least one experiment folder (or --smoke)")
    return report(args.experiments)


def report(experiments: list[Path]) -> int:
    for exp in experiments:
        trials, finished, total = experiment_parts(exp)
        if not trials:
            print(f"error: {exp}: no trial reports (*/result.json) there", file=sys.stderr)
            return 2
        seconds = sum(total.values())
        print(f"{exp}: {trials} trials ({finished} finished), {seconds:.0f} s of trial time, "
              f"{seconds / trials:.0f} s a trial")
        for key in PARTS:
            print(f"  {key:<20} {total[key]:8.0f} s  {100 * total[key] / seconds:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
