"""Export a trial of a search: ``python -m search.export EXPERIMENT_DIR [--trial ID] --out DIR``.

Without ``--trial``, the best finished trial by the run's objective (as ``best/``). The layout is
the one of :mod:`search.artifacts`: config.yaml, metrics.json, checkpoint/model.pt,
recommendations.json (botify's ``{"user": u, "tracks": [...]}`` lines), item_embeddings.npy and
item_ids.npy.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from search import results
from search.searcher import objective


def load_trials(exp_dir: Path) -> pd.DataFrame:
    """``trials.parquet`` when the run finished; otherwise read straight from Tune's files."""
    path = exp_dir / results.TRIALS_FILE
    return pd.read_parquet(path) if path.is_file() else results.trials_frame(exp_dir)


def pick(frame: pd.DataFrame, trial: str | None, objective_name: str) -> pd.Series:
    """The row of ``trial``, or the best finished trial."""
    if trial is not None:
        rows = frame[frame["trial_id"] == trial]
        if rows.empty:
            raise SystemExit(f"no trial {trial!r} (known: {', '.join(frame['trial_id'])})")
        return rows.iloc[0]
    best = results.ranked(frame, objective(objective_name))
    if best.empty:
        raise SystemExit("no finished trial to export")
    return best.iloc[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m search.export", description=__doc__.splitlines()[0])
    p.add_argument("experiment_dir", type=Path)
    p.add_argument("--trial", default=None, help="trial id (default: the best finished trial)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    exp_dir = args.experiment_dir.resolve()
    run_file = exp_dir / "search_run.json"
    obj_name = json.loads(run_file.read_text())["objective"] if run_file.is_file() else "score"
    row = pick(load_trials(exp_dir), args.trial, obj_name)
    try:
        out = results.export_row(row, args.out)
    except ValueError as exc:
        raise SystemExit(f"search.export: {exc}") from None
    print(f"exported trial {row['trial_id']} ({row['status']}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
