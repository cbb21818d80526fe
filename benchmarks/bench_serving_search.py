"""The serving search as configured (its stepped knobs) against every knob trying its whole grid,
on the models a search trained.

    python benchmarks/bench_serving_search.py runs/NAME [--trials 12] [--sessions 10000]
    python benchmarks/bench_serving_search.py --smoke      # a smoke search first, then the comparison

For each of the experiment's best finished trials (by its objective) the model is loaded from the
trial's checkpoint and its lists are computed once; then ``configs/search.yaml``'s serving search
runs twice from the overrides' serving on the tuning seed — as configured, and with no knob
stepped — and each choice is served in a paired A/B against sticky_artist on the evaluation seed
(common random numbers, ``--sessions`` sessions). Prints per trial the candidates tried, the
seconds, the tuning lift and the evaluation lift of each; then the seconds as a ratio and the
evaluation lift's mean difference with its standard error across trials. The last line is JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model.checkpoint import load_checkpoint  # noqa: E402
from search import experiment  # noqa: E402
from search.config import parse_benchmark_args, search_defaults  # noqa: E402
from search.serving_search import ServingTuner  # noqa: E402
from search.trials import load_trials, ranked  # noqa: E402
from sim_bridge.abtest import paired_eval  # noqa: E402
from sim_bridge.policies import StickyArtist  # noqa: E402
from sim_bridge.policy_specs import serving_policy
from sim_bridge.simulator import Simulator  # noqa: E402
from sim_bridge.world import load_world  # noqa: E402

ARMS = ("configured", "whole grid")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiment", nargs="?", type=Path, help="a search.run experiment folder")
    p.add_argument("--trials", type=int, default=12, help="the experiment's best finished trials to compare on")
    p.add_argument("--sessions", type=int, default=10_000, help="evaluation A/B sessions per choice")
    p.add_argument("--smoke", action="store_true", help="run a smoke search (tiny world) and compare on it")
    return parse_benchmark_args(p, "bench_serving_search", argv)


def compare(exp: Path, trials: int, sessions: int, smoke: bool) -> list[dict]:
    """Per trial: each arm's candidates tried, seconds, tuning lift and evaluation lift."""
    torch.set_num_threads(1)
    scfg, base = search_defaults(smoke, threads=1)
    settings = experiment.read_run_file(exp)
    best = ranked(load_trials(exp), experiment.run_objective(settings)).head(trials)
    world = load_world(experiment.stored_path(settings, "world", exp))
    sim, sticky = Simulator(world), StickyArtist(world.catalog)
    ss = scfg.serving_search
    arms = {ARMS[0]: ServingTuner(ss, sim, sim.run(sticky, ss.sessions, ss.seed).sessions, ss.seed)}
    arms[ARMS[1]] = ServingTuner(replace(ss, stepped=[]), sim, arms[ARMS[0]].control, ss.seed)
    control = sim.run(sticky, sessions, scfg.eval.seed).sessions
    rows = []
    for trial_id, ckpt in zip(best["trial_id"], best["checkpoint"]):
        model, _, maps = load_checkpoint(Path(ckpt) / experiment.MODEL_FILE)
        data = SimpleNamespace(**maps, serving_history=maps["history"], n_tracks=world.catalog.n_tracks)
        lists = arms[ARMS[0]].lists(model, data, "cpu", base.serving.k)
        row = {"trial": trial_id}
        for arm, tuner in arms.items():
            t0 = time.perf_counter()
            choice = tuner.search(lists, base.serving)
            seconds = time.perf_counter() - t0
            cut = lists.truncated(choice.serving.k)
            policy = serving_policy(choice.serving, world.catalog, cut.user, cut.item)
            lift = paired_eval(world, control, policy, scfg.eval.seed, sim)["lift_vs_sticky"]
            row[arm] = {"tried": choice.tried, "seconds": seconds, "tuning_lift": choice.lift, "eval_lift": lift,
                        "serving": vars(choice.serving)}
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _line(row: dict) -> str:
    cells = [f"{arm} {row[arm]['tried']:3d} tried {row[arm]['seconds']:5.1f} s "
             f"tuning {row[arm]['tuning_lift']:+6.1f}% eval {row[arm]['eval_lift']:+6.1f}%" for arm in ARMS]
    return f"{row['trial']:>10}  " + "  |  ".join(cells)


def summary(rows: list[dict]) -> dict:
    """Means per arm, the seconds ratio, and the evaluation lift's paired difference (configured -
    whole grid) with its standard error across trials."""
    mean = lambda arm, key: float(np.mean([r[arm][key] for r in rows]))  # noqa: E731
    diff = np.array([r[ARMS[0]]["eval_lift"] - r[ARMS[1]]["eval_lift"] for r in rows])
    se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else math.nan
    return {"trials": len(rows), **{f"{arm}/{key}": mean(arm, key) for arm in ARMS
                                     for key in ("tried", "seconds", "tuning_lift", "eval_lift")},
            "seconds_ratio": mean(ARMS[1], "seconds") / max(mean(ARMS[0], "seconds"), 1e-9),
            "eval_lift_diff": float(diff.mean()), "eval_lift_diff_se": se,
            "same_choice": int(sum(r[ARMS[0]]["serving"] == r[ARMS[1]]["serving"] for r in rows))}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.smoke:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "search.run", "--smoke-test", "--storage-path", tmp, "--name", "smoke"],
                           cwd=REPO, check=True, capture_output=True)
            return report(Path(tmp) / "smoke", args)
    if args.experiment is None:
        print("error: name an experiment folder (or --smoke)", file=sys.stderr)
        return 2
    return report(args.experiment, args)


def report(exp: Path, args: argparse.Namespace) -> int:
    if not (exp / experiment.TRIALS_FILE).is_file():
        print(f"error: {exp / experiment.TRIALS_FILE} not found (is {exp} a search.run experiment?)", file=sys.stderr)
        return 2
    rows = compare(exp, args.trials, args.sessions, args.smoke)
    if not rows:
        print(f"error: {exp}: no finished trial with a checkpoint", file=sys.stderr)
        return 2
    s = summary(rows)
    print(f"{s['trials']} trials, {s['same_choice']} with the same choice; candidates tried "
          f"{s['configured/tried']:.1f} vs {s['whole grid/tried']:.1f}, seconds {s['configured/seconds']:.1f} vs "
          f"{s['whole grid/seconds']:.1f} (whole grid / configured = {s['seconds_ratio']:.2f}x); eval lift "
          f"{s['configured/eval_lift']:+.1f}% vs {s['whole grid/eval_lift']:+.1f}%, difference "
          f"{s['eval_lift_diff']:+.2f} ± {s['eval_lift_diff_se']:.2f} points (SE across trials)")
    print(json.dumps(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
