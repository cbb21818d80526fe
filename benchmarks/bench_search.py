"""The search itself, measured: the default search vs random search, a GP and multi-fidelity off, same wall budget.

    python benchmarks/bench_search.py [--minutes 30] [--num-samples 50] [--seeds 0 1 2] [--out DIR] [--smoke]

Runs four searches one after another, each ``python -m search.run`` with ``--time-budget-s``
(trials still running at the budget are stopped) on the default world, once per ``--seeds`` seed
(``--seed``: the sampler's and every trial's; experiments ``NAME-sSEED``):

* ``default``: ``configs/search.yaml`` as it is (TPE, rungs + ASHA, in-trial serving search);
* ``random``: the same with ``sampler.kind: random`` (Optuna's RandomSampler);
* ``gp``: the same with ``sampler.kind: gp`` (Optuna's GPSampler, after the same startup trials);
* ``no-rungs``: the same with ``rungs.enabled: false`` (no rung lifts, no ASHA: multi-fidelity off).

Prints, per search, the best finished paired lift at a third, two thirds and all of the budget
(10, 20 and 30 minutes by default), trials finished and stopped, and the ratios to the default
(its median over the seeds); then, for every pair of a default search and another search, the
time the default took to reach that search's final best (the mark to beat: a third of the budget,
i.e. 3x sooner) and how many pairs made it. One 30-minute search is one draw: the best lifts of a
search sit within one lift's confidence interval of each other, so a single pair says little;
TPE, the GP and random search of one seed share their startup draws, so pairs of one seed are
marked. ``--smoke`` runs the four on the tiny world (``--smoke-test``) with
``benchmarks.bench_search`` of ``configs/smoke.yaml`` (one trial each; its budget only guards a hang).
Timings depend on what else runs on the machine; run it on free cores.

``--reuse NAME=DIR [NAME=DIR ...]`` takes variant NAME's experiment of the seed its
``search_run.json`` shows from an earlier search instead of running it again (e.g.
``default=runs/card`` after ``python -m search.run --num-samples 50``, seed 0): the run file
must show this sample count, this budget, a longer one or none (only what ended within the budget
is counted), and one of ``--seeds``; that it ran NAME's configuration, on this machine with
nothing else running, is up to you.
"""
from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from search import experiment, trials  # noqa: E402
from search.config import SEARCH_FILE, parse_benchmark_args  # noqa: E402
from search.timeline import best_at, time_to, timeline  # noqa: E402

VARIANTS = {
    "default": {},
    "random": {"sampler": {"kind": "random"}},
    "gp": {"sampler": {"kind": "gp"}},
    "no-rungs": {"rungs": {"enabled": False}},
}


def variant_config(changes: dict, folder: Path, name: str) -> Path:
    """configs/search.yaml with ``changes`` laid over its sections, written to ``folder``."""
    src = SEARCH_FILE
    raw = yaml.safe_load(src.read_text())
    raw["base"] = str((src.parent / raw["base"]).resolve())
    for section, values in changes.items():
        raw[section] = {**(raw.get(section) or {}), **values}
    path = folder / f"search-{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run_search(name: str, seed: int, config: Path, storage: Path, budget_s: float, samples: int,
               smoke: bool) -> Path:
    label = f"{name}-s{seed}"
    cmd = [sys.executable, "-m", "search.run", "--config", str(config), "--storage-path", str(storage),
           "--name", label, "--num-samples", str(samples), "--time-budget-s", str(budget_s), "--seed", str(seed)]
    cmd += ["--smoke-test"] if smoke else []
    print(f"== {label}: {' '.join(cmd[1:])}", flush=True)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench_search: search {label} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return storage / label


def parse_reuse(items: list[str]) -> list[tuple[str, Path]]:
    out = []
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or name not in VARIANTS:
            raise SystemExit(f"bench_search: --reuse {item}: expected NAME=DIR with NAME one of {', '.join(VARIANTS)}")
        out.append((name, Path(folder)))
    return out


def checked_reuse(name: str, exp: Path, budget_s: float, samples: int, seeds: list[int]) -> tuple[int, Path]:
    """(seed, ``exp``), when its run file says it searched with these samples, at least this budget
    (a longer or unbudgeted run holds, up to the budget, what a run stopped at the budget would)
    and one of ``seeds``."""
    if not (exp / experiment.RUN_FILE).is_file():
        raise SystemExit(f"bench_search: --reuse {name}={exp}: no {experiment.RUN_FILE} there (not a search)")
    run = experiment.read_run_file(exp)
    ran_budget, seed = run.get("time_budget_s"), run.get("seed", 0)
    if run.get("num_samples") != samples or (ran_budget is not None and ran_budget < budget_s):
        raise SystemExit(f"bench_search: --reuse {name}={exp}: it ran num_samples {run.get('num_samples')}, "
                         f"time_budget_s {ran_budget}; this benchmark needs {samples} and at least {budget_s:g}")
    if seed not in seeds:
        raise SystemExit(f"bench_search: --reuse {name}={exp}: it ran seed {seed}, not one of --seeds "
                         f"{' '.join(map(str, seeds))}")
    print(f"== {name}-s{seed}: reused {exp}", flush=True)
    return seed, exp


def reused_runs(items: list[str], budget_s: float, samples: int, seeds: list[int]) -> dict[tuple[str, int], Path]:
    """(variant, seed) -> experiment of each ``--reuse``; two for one variant and seed are an error."""
    out = {}
    for name, folder in parse_reuse(items):
        seed, exp = checked_reuse(name, folder, budget_s, samples, seeds)
        if (name, seed) in out:
            raise SystemExit(f"bench_search: --reuse {name}: {out[name, seed]} and {exp} both ran seed {seed}")
        out[name, seed] = exp
    return out


def summarise(exp: Path, marks: list[float]) -> dict:
    """Best at each mark and the trials that ended within the budget (the last mark)."""
    started = experiment.read_run_file(exp).get("started_at")
    frame = trials.load_trials(exp)
    if started is not None and "timestamp" in frame:
        frame = frame[~(frame["timestamp"] - started > marks[-1])]  # a reused longer run: its first budget only
    line = timeline(frame, started)
    row = {f"best@{m / 60:g}min": best_at(line, m) for m in marks}
    row.update(finished=int((frame["status"] == "finished").sum()), stopped=int((frame["status"] == "stopped").sum()),
               trials=len(frame))
    return {"row": row, "line": line}


def ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b != 0 else math.nan


def report(results: dict[tuple[str, int], dict], marks: list[float]) -> pd.DataFrame:
    """The table (a row per search, ``NAME-sSEED``) and, per pair of a default search and another,
    when the default reached the other's final best."""
    table = pd.DataFrame({f"{name}-s{seed}": r["row"] for (name, seed), r in results.items()}).T
    defaults = {seed: r for (name, seed), r in results.items() if name == "default"}
    base = table.loc[[f"default-s{seed}" for seed in defaults]].median()
    for m in marks:
        col = f"best@{m / 60:g}min"
        table[f"default/this {m / 60:g}min"] = [ratio(base[col], v) for v in table[col]]
    print("\n" + table.to_string(float_format=lambda v: f"{v:.2f}"), flush=True)
    budget = marks[-1]
    for other in dict.fromkeys(name for name, _ in results if name != "default"):
        sooner = 0
        pairs = [(d, s) for d in defaults for (name, s) in results if name == other]
        for d_seed, o_seed in pairs:
            line = results[other, o_seed]["line"]
            target = best_at(line, budget)
            t, own = time_to(defaults[d_seed]["line"], target), time_to(line, target)
            shared = " (same seed: shared startup draws)" if d_seed == o_seed else ""
            sooner += bool(t <= budget / 3)
            print(f"default-s{d_seed} reached {other}-s{o_seed}'s final best ({target:+.1f}%, its own at "
                  f"{own / 60:.1f} min) after {t / 60:.1f} min = {t / budget:.2f} of the budget{shared}"
                  if math.isfinite(t) else
                  f"default-s{d_seed} never reached {other}-s{o_seed}'s final best ({target:+.1f}%){shared}",
                  flush=True)
        print(f"default reached {other}'s final best within a third of the budget (3x sooner) in "
              f"{sooner} of {len(pairs)} pairs", flush=True)
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0, help="wall budget of each search")
    p.add_argument("--num-samples", type=int, default=50)
    p.add_argument("--out", type=Path, default=None, help="keep the experiments here (default: a temp folder)")
    p.add_argument("--only", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0],
                   help="run each search once per seed (search.run --seed)")
    p.add_argument("--smoke", action="store_true", help="tiny world, configs/smoke.yaml's budget and samples")
    p.add_argument("--reuse", nargs="+", default=[], metavar="NAME=DIR",
                   help="take variant NAME's experiment of DIR's seed from DIR (an earlier search) "
                        "instead of running it")
    args = parse_benchmark_args(p, "bench_search", argv)
    if "default" not in args.only:
        args.only = ["default", *args.only]
    budget, samples = 60.0 * args.minutes, args.num_samples
    reuse = reused_runs(args.reuse, budget, samples, args.seeds)
    marks = [budget / 3, 2 * budget / 3, budget]
    with tempfile.TemporaryDirectory() as tmp:
        storage = args.out.resolve() if args.out else Path(tmp)
        storage.mkdir(parents=True, exist_ok=True)
        results = {}
        for seed in args.seeds:
            for name in args.only:
                exp = reuse.get((name, seed)) or run_search(
                    name, seed, variant_config(VARIANTS[name], Path(tmp), name), storage, budget, samples,
                    args.smoke)
                results[name, seed] = summarise(exp, marks)
        report(results, marks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
