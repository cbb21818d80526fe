"""Export a trial of a search: ``python -m search.export EXPERIMENT_DIR [--trial ID] --out DIR``.

Without ``--trial``, the best finished trial by the run's objective (as ``best/``). The layout is
the one of :mod:`search.artifacts`: config.yaml, metrics.json, checkpoint/model.pt,
recommendations.json (botify's ``{"user": u, "tracks": [...]}`` lines), item_embeddings.npy and
item_ids.npy.

``--out`` is written atomically (a temp folder renamed into place); an existing non-empty ``--out``
is refused unless ``--force``, which replaces it as a whole. Reading the experiment unpickles
Tune's state files from it: export only experiment folders you made.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from sim_bridge.contract.files import check_output_dir

from search import errors, results
from search.errors import SearchError
from search.searcher import objective


def pick(frame: pd.DataFrame, trial: str | None, objective_name: str) -> pd.Series:
    """The row of ``trial``, or the best finished trial."""
    if trial is not None:
        rows = frame[frame["trial_id"] == trial]
        if rows.empty:
            raise SearchError(f"--trial: no trial {trial!r} (known: {', '.join(frame['trial_id'])})")
        return rows.iloc[0]
    best = results.ranked(frame, objective(objective_name))
    if best.empty:
        raise SearchError(f"no finished trial to export ({results.status_counts(frame)})")
    return best.iloc[0]


def parse_args(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m search.export", description=__doc__.splitlines()[0])
    p.add_argument("experiment_dir", type=Path)
    p.add_argument("--trial", default=None, help="trial id (default: the best finished trial)")
    p.add_argument("--out", type=Path, required=True, help="output folder (new or empty unless --force)")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder as a whole")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    exp_dir = args.experiment_dir.resolve()
    if not exp_dir.is_dir():
        raise SearchError(f"{exp_dir}: no such experiment folder")
    check_output_dir(args.out, args.force, keep=(exp_dir,))  # before reading Tune's state
    obj_name = results.read_run_file(exp_dir).get("objective", "score")
    row = pick(results.load_trials(exp_dir), args.trial, obj_name)
    out = results.export_row(row, args.out, force=args.force, keep=(exp_dir,))
    print(f"exported trial {row['trial_id']} ({row['status']}) to {out}")
    return 0


def main(argv=None) -> int:
    try:
        return run(parse_args(argv))
    except errors.USER_ERRORS as exc:
        return errors.report(exc)


if __name__ == "__main__":
    sys.exit(main())
