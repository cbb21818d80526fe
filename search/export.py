"""Export a trial of a search: ``python -m search.export EXPERIMENT_DIR [--trial ID] --out DIR``.

Without ``--trial``, the best finished trial by the run's objective (as ``best/``), in the layout
of :mod:`search.experiment`: config.yaml, metrics.json, checkpoint/model.pt, recommendations.json
(botify's ``{"user": u, "tracks": [...]}`` lines), item_embeddings.npy, item_ids.npy and
source.json (the experiment, the trial and the world, logs and config its run used).

``--out`` is written atomically (a temp folder renamed into place); an existing non-empty ``--out``
is refused unless ``--force``, which replaces it as a whole. Reading the experiment unpickles
Tune's state files from it: export only experiment folders you made.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim_bridge.contract.files import check_output_dir

from search import errors, experiment, trials
from search.errors import SearchError


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
    settings = experiment.read_run_file(exp_dir)
    row = trials.pick(trials.load_trials(exp_dir), args.trial, experiment.run_objective(settings))
    out = experiment.export_row(row, args.out, experiment.export_source(exp_dir, settings, row),
                                force=args.force, keep=(exp_dir,))
    print(f"exported trial {row['trial_id']} ({row['status']}) to {out}")
    return 0


def main(argv=None) -> int:
    try:
        return run(parse_args(argv))
    except errors.USER_ERRORS as exc:
        return errors.report(exc)


if __name__ == "__main__":
    sys.exit(main())
