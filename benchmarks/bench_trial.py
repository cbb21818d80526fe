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

Both are :func:`search.trial.run_trial`, with different options. Prints wall seconds, epochs, the
paired lift of each, and the ratio before / after. Timings depend on what else runs on the
machine. ``--smoke``: the tiny world, ``search:`` of ``configs/smoke.yaml`` for both.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sim_bridge import defaults  # noqa: E402
from sim_bridge.contract.files import with_overrides  # noqa: E402
from sim_bridge.contract.logs import read_logs  # noqa: E402
from sim_bridge.world import load_world  # noqa: E402

from search.config import parse_benchmark_args, search_defaults  # noqa: E402
from search.trial import TrialSetup, prepare, run_trial  # noqa: E402

BEFORE_EPOCHS = 25  # the search's max_epochs before rungs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="the tiny world, configs/smoke.yaml's search settings")
    p.add_argument("--threads", type=int, default=1, help="torch threads (a trial holds one CPU)")
    args = parse_benchmark_args(p, "bench_trial", argv)
    scfg, base = search_defaults(args.smoke, args.threads)
    world = load_world(defaults.ensure_smoke_world() if args.smoke else defaults.ensure_default_world())
    events = read_logs(defaults.ensure_smoke_logs() if args.smoke else defaults.ensure_default_logs())
    before = TrialSetup(scfg.eval, scfg.objective)
    after = TrialSetup(scfg.eval, scfg.objective, rungs=scfg.rungs, serving_search=scfg.serving_search)

    before_inputs = prepare(world, events, before, None)  # as before: each trial built its data and a simulator
    before_inputs.simulator = None
    before_cfg = with_overrides(base, {"train.max_epochs": base.train.max_epochs if args.smoke else BEFORE_EPOCHS})
    t0 = time.perf_counter()
    old = run_trial(before_cfg, before_inputs, before)
    t_before = time.perf_counter() - t0

    t0 = time.perf_counter()  # the driver's share: built once per search, not per trial
    after_inputs = prepare(world, events, after, None)
    t_driver = time.perf_counter() - t0
    t0 = time.perf_counter()
    new = run_trial(base, after_inputs, after)
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
