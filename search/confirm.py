"""Confirm a search's winners: ``python -m search.confirm EXPERIMENT_DIR [--top-k 3]``.

The best of many noisy trials is biased upward (the winner's curse), so each of the top-k
finished trials (by the run's objective) gets a FRESH, unpaired A/B against sticky_artist, as the
seed ran it (DESIGN §8, :mod:`search.ab`): botify assignment in an experiment ``confirm-<trial>``,
50/50, at 8,000 sessions (the seed's scale) and at 50,000. The trial is served exactly as it was
searched (its checkpoint's lists and ``serving`` config, :mod:`search.serving`), in the search's
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
import json
import sys
from pathlib import Path

import pandas as pd

from model.config import load_experiment_config
from sim_bridge import columns as C
from sim_bridge.abtest import to_markdown, write_table
from sim_bridge.atomic import atomic_write_text
from sim_bridge.world import World, load_world

from search import artifacts, results
from search.ab import COURSE_METRICS, unpaired_ab
from search.config import load_search_config
from search.searcher import objective
from search.serving import policy_spec, serving_policy

REPO = Path(__file__).resolve().parent.parent
RUN_FILE = "search_run.json"
DEFAULT_SEED = 909_000
DEFAULT_SESSIONS = (8_000, 50_000)


class ConfirmError(Exception):
    """A problem with the experiment folder, reported as one line (no traceback)."""


def run_settings(exp_dir: Path) -> dict:
    """The run's ``search_run.json`` (objective, world, search config path); {} if absent."""
    path = exp_dir / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def search_eval_seed(settings: dict) -> int:
    """``eval.seed`` of the search config the run used (default: ``configs/search.yaml``)."""
    path = Path(settings.get("config") or REPO / "configs" / "search.yaml")
    if not path.is_file():
        path = REPO / "configs" / "search.yaml"
    return int(load_search_config(path).eval.seed)


def resolve_world(settings: dict, override: Path | None) -> Path:
    """``--world``, else the world the search recorded, else the built-in (smoke) world."""
    from sim_bridge import defaults

    recorded = settings.get("world")
    if override is not None:
        if recorded and Path(recorded).resolve() != override.resolve():
            print(f"WARNING: --world {override} is not the search's world {recorded}", flush=True)
        return override
    if recorded and Path(recorded).is_dir():
        return Path(recorded)
    if recorded:
        print(f"WARNING: the search's world {recorded} is gone; using the built-in world", flush=True)
    return Path(defaults.ensure_smoke_world() if settings.get("smoke_test") else defaults.ensure_default_world())


def top_trials(exp_dir: Path, settings: dict, top_k: int) -> pd.DataFrame:
    """The top-k finished trials by the run's objective, each with a checkpoint folder."""
    path = exp_dir / results.TRIALS_FILE
    if not path.is_file():
        raise ConfirmError(f"{path} not found (is {exp_dir} a finished search.run experiment?)")
    best = results.ranked(pd.read_parquet(path), objective(settings.get("objective", "score")))
    if best.empty:
        raise ConfirmError(f"no finished trial in {path}")
    best = best.head(top_k)
    for trial_id, ckpt in zip(best["trial_id"], best["checkpoint"]):
        if not isinstance(ckpt, str) or not (Path(ckpt) / artifacts.RECS_FILE).is_file():
            raise ConfirmError(f"trial {trial_id} has no checkpoint with {artifacts.RECS_FILE} (checkpoint: {ckpt})")
    return best


def trial_policy(checkpoint: Path, world: World):
    """The trial's serving policy, rebuilt from its checkpoint as it was searched; and its label."""
    cfg = load_experiment_config(checkpoint / artifacts.CONFIG_FILE)
    policy = serving_policy(cfg.serving, world.catalog, artifacts.load_recs(checkpoint),
                            artifacts.load_item_recs(checkpoint))
    return policy, policy_spec(cfg.serving)


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


def write_outputs(out: Path, table: pd.DataFrame, header: str, lines: list[str]) -> None:
    """``confirm.csv`` (the seed's columns) and ``confirm.md``, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    write_table(table, out / "confirm.csv")
    md = f"{header}\n\n{to_markdown(table)}\n" + "\n".join(lines) + "\n"
    atomic_write_text(out / "confirm.md", md)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m search.confirm", description=__doc__.splitlines()[0])
    p.add_argument("experiment_dir", type=Path)
    p.add_argument("--top-k", type=int, default=3, help="finished trials to confirm, best first (default 3)")
    p.add_argument("--sessions", type=int, nargs="+", default=list(DEFAULT_SESSIONS),
                   help="A/B sizes in sessions (default 8000 50000)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"first simulation seed, +1 per A/B (default {DEFAULT_SEED}); never the search's eval.seed")
    p.add_argument("--world", type=Path, default=None, help="world folder (default: the search's)")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> Path:
    """Check the inputs, run every A/B, write the outputs; returns the output folder."""
    exp_dir = args.experiment_dir.resolve()
    if not exp_dir.is_dir():
        raise ConfirmError(f"{exp_dir} is not a folder")
    if args.top_k < 1 or min(args.sessions) < 2:
        raise ConfirmError("--top-k must be >= 1 and every --sessions >= 2")
    settings = run_settings(exp_dir)
    trials = top_trials(exp_dir, settings, args.top_k)
    eval_seed, n_ab = search_eval_seed(settings), len(trials) * len(args.sessions)
    if args.seed <= eval_seed < args.seed + n_ab:
        raise ConfirmError(f"--seed {args.seed} (+0..{n_ab - 1}) reuses the search's eval.seed {eval_seed}: "
                           "a confirmation needs sessions the search never saw")
    world_dir = resolve_world(settings, args.world)
    world = load_world(world_dir)
    table = confirm(exp_dir, world, trials, list(args.sessions), args.seed)
    header = (f"# Confirmation of `{exp_dir}`\n\nFresh unpaired A/B vs sticky_artist (botify assignment, 50/50), "
              f"world `{world_dir}`, seeds {args.seed}..{args.seed + n_ab - 1} (search eval.seed {eval_seed}), "
              f"metrics {', '.join(COURSE_METRICS)}.")
    out = exp_dir / "confirm"
    write_outputs(out, table, header, verdicts(table, trials, list(args.sessions)))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        out = run(args)
    except ConfirmError as exc:
        print(f"search.confirm: {exc}", file=sys.stderr)
        return 2
    print((out / "confirm.md").read_text(), flush=True)
    print(f"results: {out / 'confirm.csv'}, {out / 'confirm.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
