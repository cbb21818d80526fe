"""One default-scale search trial, before and after the trial speed-ups, in the same run.

    python benchmarks/bench_trial.py [--smoke] [--threads 1]

Both train the search's first trial (the seed's model with ``min_positives: 1``, ≈24k items, i2i
serving of 200-long lists) on the default logs, without Ray, on one thread, and finish with the
paired A/B of the search (eval.sessions on eval.seed):

* ``before``: as trials ran before rungs — up to 25 epochs with validation-loss early stopping,
  the configured serving, a simulator built for the evaluation;
* ``after``: as trials run now (``configs/search.yaml``) — rungs after epochs 1, 3, 6, ... (a
  trial stops when its rung lift stops improving and keeps its best rung's weights), the serving
  chosen by simulation inside the trial, one simulator (start table built once) for everything.

Prints wall seconds, epochs, the paired lift of each, and the ratio before / after. Timings
depend on what else runs on the machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model.config import load_experiment_config  # noqa: E402
from sim_bridge import defaults  # noqa: E402
from sim_bridge.contract.files import with_overrides  # noqa: E402
from sim_bridge.contract.logs import read_logs  # noqa: E402
from sim_bridge.policies import StickyArtist  # noqa: E402
from sim_bridge.simulator import Simulator  # noqa: E402
from sim_bridge.world import load_world  # noqa: E402

from search.config import load_search_config  # noqa: E402
from sim_bridge.abtest import control_sessions  # noqa: E402
from search.trainable import TrialSetup, train_and_serve  # noqa: E402

BEFORE_EPOCHS = 25  # the search's max_epochs before rungs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="the tiny world, 2 epochs before, 300 sessions")
    p.add_argument("--threads", type=int, default=1, help="torch threads (a trial holds one CPU)")
    args = p.parse_args(argv)
    scfg = load_search_config(REPO / "configs" / "search.yaml")
    base = with_overrides(load_experiment_config(scfg.base), scfg.overrides)
    base = replace(base, train=replace(base.train, num_threads=args.threads))
    eval_cfg, rungs, serving = scfg.eval, scfg.rungs, scfg.serving_search
    if args.smoke:
        base = with_overrides(base, scfg.smoke.overrides)
        eval_cfg = replace(eval_cfg, sessions=scfg.smoke.sessions)
        rungs, serving = replace(rungs, sessions=scfg.smoke.sessions), replace(serving, sessions=scfg.smoke.sessions)
    world = load_world(defaults.ensure_smoke_world() if args.smoke else defaults.ensure_default_world())
    events = read_logs(defaults.ensure_smoke_logs() if args.smoke else defaults.ensure_default_logs())
    control = control_sessions(world, eval_cfg.sessions, eval_cfg.seed)

    before_cfg = with_overrides(base, {"train.max_epochs": base.train.max_epochs if args.smoke else BEFORE_EPOCHS})
    before = TrialSetup({}, eval_cfg, scfg.objective)
    t0 = time.perf_counter()
    old = train_and_serve(before_cfg, world, None, events, control, before)
    t_before = time.perf_counter() - t0

    t0 = time.perf_counter()  # the driver's share: built once per search, not per trial
    sim = Simulator(world)
    rung_control = sim.run(StickyArtist(world.catalog), rungs.sessions, rungs.seed).sessions
    tuning_control = sim.run(StickyArtist(world.catalog), serving.sessions, serving.seed).sessions
    t_driver = time.perf_counter() - t0
    after = TrialSetup({}, eval_cfg, scfg.objective, rungs=rungs, serving_search=serving)
    t0 = time.perf_counter()
    new = train_and_serve(base, world, None, events, control, after, rung_control, tuning_control, sim)
    t_after = time.perf_counter() - t0

    print(f"{'trial':<8} {'wall s':>7} {'epochs':>6} {'rungs s':>7}  lift vs sticky_artist % [95% CI]  serving")
    for name, out, secs in (("before", old, t_before), ("after", new, t_after)):
        m = out.metrics
        print(f"{name:<8} {secs:7.1f} {m['epoch']:>6} {m.get('rung_seconds', 0.0):7.1f}  "
              f"{m['lift_vs_sticky']:+.1f} [{m['lift_lower']:+.1f}, {m['lift_upper']:+.1f}]  "
              f"{out.cfg.serving}", flush=True)
    print(f"ratio before / after (wall): {t_before / t_after:.2f}x   "
          f"(after's once-per-search driver setup, not counted: {t_driver:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
