"""Confirm a search's winners: ``python -m search.confirm EXPERIMENT_DIR [--top-k 3]``.

The best of many noisy trials is biased upward (the winner's curse), so each of the top-k
finished trials (by the run's objective) gets a FRESH, unpaired A/B against sticky_artist, as the
seed ran it (docs/ab_test.md, :mod:`sim_bridge.abtest`): botify assignment in an experiment ``confirm-<trial>``,
50/50, at 8,000 sessions (the seed's scale) and at 50,000. The trial is served exactly as it was
searched (its checkpoint's lists and ``serving`` config, :func:`search.experiment.trial_policy`), in the search's
world (``search_run.json``).

Simulation seeds: ``--seed S`` (default 909000) + 0, 1, ... one per A/B. The search's paired
evaluation used ``eval.seed`` of the run's search config (``configs/search.yaml``, 20240611);
a seed range that contains it is refused, so no confirmation reuses the search's sessions.

Writes ``EXPERIMENT_DIR/confirm/confirm.csv`` (the seed's columns: model, metric, effect, upper,
lower, control_mean, treatment_mean, significant; ``model`` = ``<trial_id> <serving> (<n>
sessions)``) and ``confirm.md`` (the table, then one verdict line per trial), atomically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from sim_bridge.contract import columns as C
from sim_bridge.abtest import COURSE_METRICS, to_markdown, unpaired_ab, write_table
from sim_bridge.contract.files import atomic_dir, atomic_write_text, check_output_dir
from sim_bridge.world import World, load_world

from search import errors, experiment
from search.config import load_search_config
from search.trials import load_trials, ranked, status_counts
from sim_bridge.policy_specs import policy_spec

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SEED = 909_000
DEFAULT_SESSIONS = (8_000, 50_000)


class ConfirmError(errors.SearchError):
    """A problem with the experiment folder or the arguments, reported as one line."""


def search_eval_seed(settings: dict) -> int:
    """``eval.seed`` of the search config the run used (default: ``configs/search.yaml``)."""
    path = Path(settings.get("config") or REPO / "configs" / "search.yaml")
    if not path.is_file():
        path = REPO / "configs" / "search.yaml"
    return int(load_search_config(path).eval.seed)


def resolve_world(settings: dict, override: Path | None, exp_dir: Path) -> Path:
    """``--world``, else the world the search recorded (absolute, still there), else — for a run
    that recorded none — the built-in (smoke) world."""
    from sim_bridge import defaults

    recorded = settings.get("world")
    if override is not None:
        if not override.is_dir():
            raise ConfirmError(f"--world {override}: no such folder")
        if recorded and Path(recorded).resolve() != override.resolve():
            print(f"WARNING: --world {override} is not the search's world {recorded}", flush=True)
        return override.resolve()
    if recorded:
        return experiment.stored_path(settings, "world", exp_dir, hint=" or pass --world")
    return Path(defaults.ensure_smoke_world() if settings.get("smoke_test") else defaults.ensure_default_world())


def top_trials(exp_dir: Path, settings: dict, top_k: int) -> pd.DataFrame:
    """The top-k finished trials by the run's objective, each with a checkpoint folder."""
    path = exp_dir / experiment.TRIALS_FILE
    if not path.is_file():
        raise ConfirmError(f"{path} not found (is {exp_dir} a finished search.run experiment?)")
    frame = load_trials(exp_dir)
    best = ranked(frame, experiment.run_objective(settings))
    if best.empty:
        raise ConfirmError(f"no finished trial in {path} ({status_counts(frame)})")
    best = best.head(top_k)
    for trial_id, ckpt in zip(best["trial_id"], best["checkpoint"]):
        if not isinstance(ckpt, str) or not (Path(ckpt) / experiment.RECS_FILE).is_file():
            raise ConfirmError(f"trial {trial_id} has no checkpoint with {experiment.RECS_FILE} (checkpoint: {ckpt})")
    return best


def trial_policy(checkpoint: Path, world: World):
    """The trial's serving policy, rebuilt from its checkpoint as it was searched; and its label."""
    label = policy_spec(experiment.served_config(checkpoint).serving)
    return experiment.trial_policy(checkpoint, world.catalog), label


def confirm(exp_dir: Path, world: World, trials: pd.DataFrame, sizes: list[int], seed: int) -> pd.DataFrame:
    """One fresh A/B per (trial, size); seeds ``seed``, ``seed + 1``, ... in that order."""
    tables, n = [], 0
    for trial_id, ckpt in zip(trials["trial_id"], trials["checkpoint"]):
        policy, spec = trial_policy(Path(ckpt), world)
        for size in sizes:
            print(f"A/B {n + 1}/{len(trials) * len(sizes)}: trial {trial_id} ({spec}) vs sticky_artist, "
                  f"{size} sessions", flush=True)
            tables.append(unpaired_ab(world, policy, f"confirm-{trial_id}", size, seed + n,
                                      f"{trial_id} {spec} ({size} sessions)"))
            n += 1
    return pd.concat(tables, ignore_index=True)


def verdicts(table: pd.DataFrame, trials: pd.DataFrame, sizes: list[int]) -> list[str]:
    """One line per trial: is mean_time_per_session a significant win at the largest size?"""
    rows = table[table["metric"] == C.MEAN_TIME_PER_SESSION]
    lines = []
    for trial_id in trials["trial_id"]:
        mine = rows[rows["model"].str.startswith(f"{trial_id} ")]
        parts = [f"{r.effect:+.2f}% [{r.lower:+.2f}, {r.upper:+.2f}] at {size}"
                 for size, r in zip(sizes, mine.itertuples())]
        last = mine.iloc[-1]
        win = bool(last["significant"] and last["effect"] > 0)
        verdict = "CONFIRMED significant win" if win else "not a confirmed win"
        lines.append(f"- trial {trial_id}: mean_time_per_session {'; '.join(parts)} sessions → "
                     f"{verdict} at {sizes[-1]} sessions")
    return lines


def write_outputs(out: Path, table: pd.DataFrame, header: str, lines: list[str], force: bool = False) -> None:
    """``confirm.csv`` (the seed's columns) and ``confirm.md``, the folder written atomically."""
    md = f"{header}\n\n{to_markdown(table)}\n" + "\n".join(lines) + "\n"
    with atomic_dir(out, force=force, flag="confirm folder") as tmp:
        write_table(table, tmp / "confirm.csv")
        atomic_write_text(tmp / "confirm.md", md)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m search.confirm", description=__doc__.splitlines()[0])
    p.add_argument("experiment_dir", type=Path)
    p.add_argument("--top-k", type=int, default=3, help="finished trials to confirm, best first (default 3)")
    p.add_argument("--sessions", type=int, nargs="+", default=list(DEFAULT_SESSIONS),
                   help="A/B sizes in sessions (default 8000 50000)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"first simulation seed, +1 per A/B (default {DEFAULT_SEED}); never the search's eval.seed")
    p.add_argument("--world", type=Path, default=None, help="world folder (default: the search's)")
    p.add_argument("--force", action="store_true", help="replace an existing EXPERIMENT_DIR/confirm/")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> Path:
    """Check the inputs, run every A/B, write the outputs; returns the output folder."""
    exp_dir = args.experiment_dir.resolve()
    if not exp_dir.is_dir():
        raise ConfirmError(f"{exp_dir} is not a folder")
    if args.top_k < 1:
        raise ConfirmError(f"--top-k must be >= 1, got {args.top_k}")
    if min(args.sessions) < 2:
        raise ConfirmError(f"every --sessions must be >= 2, got {min(args.sessions)}")
    settings = experiment.read_run_file(exp_dir)
    trials = top_trials(exp_dir, settings, args.top_k)
    eval_seed, n_ab = search_eval_seed(settings), len(trials) * len(args.sessions)
    if args.seed <= eval_seed < args.seed + n_ab:
        raise ConfirmError(f"--seed {args.seed} (+0..{n_ab - 1}) reuses the search's eval.seed {eval_seed}: "
                           "a confirmation needs sessions the search never saw")
    out = exp_dir / "confirm"
    check_output_dir(out, args.force, flag="confirm folder")  # before any A/B
    world_dir = resolve_world(settings, args.world, exp_dir)
    world = load_world(world_dir)
    table = confirm(exp_dir, world, trials, list(args.sessions), args.seed)
    header = (f"# Confirmation of `{exp_dir}`\n\nFresh unpaired A/B vs sticky_artist (botify assignment, 50/50), "
              f"world `{world_dir}`, seeds {args.seed}..{args.seed + n_ab - 1} (search eval.seed {eval_seed}), "
              f"metrics {', '.join(COURSE_METRICS)}.")
    write_outputs(out, table, header, verdicts(table, trials, list(args.sessions)), args.force)
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        out = run(parse_args(argv))
    except errors.USER_ERRORS as exc:
        return errors.report(exc)
    print((out / "confirm.md").read_text(), flush=True)
    print(f"results: {out / 'confirm.csv'}, {out / 'confirm.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
