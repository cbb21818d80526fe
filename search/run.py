"""The search driver: ``python -m search.run --num-samples 50``.

Starts (or joins) Ray, prepares the shared inputs once, runs Optuna's TPE through Tune on the
DSSM trainable, and leaves under ``STORAGE/NAME``: Tune's experiment files (with TensorBoard
event files per trial), ``trials.parquet``, ``summary.md`` and ``best/`` (see search.results).
``--resume`` continues a stopped run (Ctrl-C, killed driver) without rerunning finished trials.
Arguments, configs, the world and the logs are all checked before Ray starts and before anything
is written; a problem is one line on stderr and exit 2 (:mod:`search.errors`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from ray import tune
from ray.tune.logger import TBXLoggerCallback

from model.config import flatten, load_experiment_config
from sim_bridge.contract.files import ConfigError, atomic_write_text, with_overrides
from sim_bridge.defaults import use_world_config

from search import budget, cluster, errors, inputs, results, warm_start
from search.config import load_search_config
from search.data_cache import logs_digest
from search.errors import SearchError
from search.progress import StatusTable
from search.searcher import (JOURNAL_FILE, OBJECTIVES, base_point, build_scheduler, build_searcher, objective,
                             study_storage)
from search.serving_tuner import check_serving_search
from search.space import parse_space, touches_features
from search.trainable import TrialSetup, run_trial

REPO = Path(__file__).resolve().parent.parent
RUN_FILE = results.RUN_FILE
TUNER_FILE = "tuner.pkl"  # written by Tune when the run starts: without it nothing ran yet


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m search.run", description=__doc__.splitlines()[0])
    p.add_argument("--num-samples", type=int, default=None, help="trials in all (default 50; smoke: 3)")
    p.add_argument("--config", default=str(REPO / "configs" / "search.yaml"))
    p.add_argument("--world", default=None, help="world folder (default: the built-in world, cached)")
    p.add_argument("--logs", default=None, help="training logs, Parquet or JSON lines (default: built-in)")
    p.add_argument("--world-config", default=None,
                   help="generate (once, cached) the built-in world and its logs from this world config "
                        "instead of configs/world.yaml, e.g. configs/world_v1.yaml")
    p.add_argument("--cpus-per-trial", type=float, default=1)
    p.add_argument("--gpus-per-trial", type=float, default=0, help="fractional allowed")
    p.add_argument("--max-concurrent", type=int, default=2)
    p.add_argument("--address", default=None, help="join this Ray cluster (default: start a local one)")
    p.add_argument("--storage-path", default="./runs")
    p.add_argument("--name", default=None, help="experiment name (default: search-DATE-TIME)")
    p.add_argument("--resume", action="store_true", help="continue NAME (default: the newest run)")
    p.add_argument("--seed", type=int, default=0, help="searcher seed and every trial's training seed")
    p.add_argument("--objective", choices=OBJECTIVES, default="score")
    p.add_argument("--smoke-test", action="store_true", help="tiny world, few epochs/sessions/samples")
    p.add_argument("--dashboard-host", default=cluster.DEFAULT_DASHBOARD_HOST)
    p.add_argument("--warm-start", default=None, metavar="EXPERIMENT_DIR",
                   help="seed the sampler with an earlier search's finished (and stopped) trials")
    p.add_argument("--time-budget-s", type=float, default=None,
                   help="stop starting trials after this many seconds (the running ones are stopped)")
    p.add_argument("--confirm", action="store_true",
                   help="when the search ends, confirm its top 3 trials with fresh A/Bs (search.confirm)")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Flags whose values argparse cannot check by type alone."""
    if args.num_samples is not None and args.num_samples < 1:
        raise SearchError(f"--num-samples must be >= 1, got {args.num_samples}")
    if args.cpus_per_trial <= 0:
        raise SearchError(f"--cpus-per-trial must be > 0, got {args.cpus_per_trial:g}")
    if args.gpus_per_trial < 0:
        raise SearchError(f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial:g}")
    if args.max_concurrent < 1:
        raise SearchError(f"--max-concurrent must be >= 1, got {args.max_concurrent}")
    if args.name is not None and (not args.name or Path(args.name).name != args.name or args.name in (".", "..")):
        raise SearchError(f"--name must be a plain folder name (no '/'), got {args.name!r}")
    if Path(args.storage_path).exists() and not Path(args.storage_path).is_dir():
        raise SearchError(f"--storage-path {args.storage_path}: is a file, expected a folder")
    if args.warm_start and args.resume:
        raise SearchError("--warm-start starts a new search; a resumed one keeps its own study")
    if args.time_budget_s is not None and not args.time_budget_s > 0:
        raise SearchError(f"--time-budget-s: expected seconds > 0, got {args.time_budget_s}")
    if args.world_config is not None and args.world is not None:
        raise SearchError("--world-config picks the built-in world; --world gives one: use one of them")
    if args.world is not None and args.logs is None:  # the built-in logs belong to the built-in world
        raise SearchError(f"--world needs --logs: training logs from that world, e.g. python -m sim_bridge "
                          f"simulate --world {args.world} --experiment logging "
                          "--arms C=random,T1=sticky_artist,T2=toppop_catalog --sessions 60000 --out logs.parquet")


def experiment_dir(args) -> Path:
    """``STORAGE/NAME``; ``--resume`` without a name picks the newest experiment there."""
    storage = Path(args.storage_path).resolve()
    if args.name:
        return storage / args.name
    if args.resume:
        runs = sorted(storage.glob(f"*/{RUN_FILE}"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise SearchError(f"--resume: no experiment under {storage}")
        return runs[-1].parent
    return storage / time.strftime("search-%Y%m%d-%H%M%S")


def run_settings(args, exp_dir: Path) -> dict:
    """This run's settings; on --resume the stored ones win except the (raised) sample budget.

    Paths are stored absolute, so ``--resume``, ``search.confirm`` and ``search.export`` find the
    same world, logs and config from any directory.
    """
    started = (exp_dir / TUNER_FILE).is_file()
    if not args.resume:
        if started:
            raise SearchError(f"{exp_dir} already holds a run: pass --resume or another --name")
        fresh = {k: getattr(args, k) for k in ("config", "world", "logs", "seed", "objective", "smoke_test",
                                               "cpus_per_trial", "gpus_per_trial", "max_concurrent",
                                               "warm_start", "time_budget_s")}
        fresh.update(num_samples=args.num_samples, started_at=time.time())
        return {**fresh, **{k: _absolute(fresh[k]) for k in ("config", "world", "logs", "warm_start")}}
    if not (exp_dir / RUN_FILE).is_file():
        raise SearchError(f"--resume: {exp_dir} holds no search run ({RUN_FILE} not found)")
    if not started:
        raise SearchError(f"--resume: the run in {exp_dir} never started ({TUNER_FILE} not found); "
                          "start it again without --resume")
    stored = results.read_run_file(exp_dir)
    for key in ("config", "world", "logs"):
        results.stored_path(stored, key, exp_dir)
    if args.num_samples is not None:
        stored["num_samples"] = max(args.num_samples, stored["num_samples"])
    return stored


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


def load_configs(settings: dict):
    """(search config, base training config, validated space, eval config) — before Ray starts."""
    scfg = load_search_config(settings["config"])
    base = load_experiment_config(scfg.base, scfg.variant)
    try:
        base = with_overrides(base, scfg.overrides)
    except ConfigError as exc:
        raise ConfigError(f"{settings['config']}: overrides: {exc}") from None
    eval_cfg = scfg.eval
    if settings["smoke_test"]:
        try:
            base = with_overrides(base, scfg.smoke.overrides)
        except ConfigError as exc:
            raise ConfigError(f"{settings['config']}: smoke.overrides: {exc}") from None
        eval_cfg = replace(eval_cfg, sessions=scfg.smoke.sessions)
        scfg = replace(scfg, rungs=replace(scfg.rungs, sessions=scfg.smoke.sessions),
                       serving_search=replace(scfg.serving_search, sessions=scfg.smoke.sessions))
    check_serving_search(scfg.serving_search, base.serving)
    spec = parse_space(scfg.space, base)
    return scfg, base, spec, eval_cfg


def trial_setup(scfg, base, eval_cfg, shared: inputs.SharedInputs, settings: dict, exp_dir: Path) -> TrialSetup:
    """What every trial shares: configs, rungs, the serving search, the training-data cache."""
    from sim_bridge.defaults import cache_root

    return TrialSetup(dataclasses.asdict(base), eval_cfg, scfg.objective,
                      cpus_per_trial=max(1, int(settings["cpus_per_trial"])), exp_dir=str(exp_dir),
                      rungs=scfg.rungs if scfg.rungs.enabled else None, serving_search=scfg.serving_search,
                      data_cache=str(cache_root() / "training-data") if shared.events is not None else None,
                      logs_digest=logs_digest(shared.events) if shared.events is not None else None)


def make_trainable(shared: inputs.SharedInputs, setup: TrialSetup, settings: dict):
    """The trainable with its inputs in the object store and its resources attached."""
    bound = tune.with_parameters(run_trial, setup=setup, **shared.as_kwargs())
    return tune.with_resources(bound, {"cpu": settings["cpus_per_trial"], "gpu": settings["gpus_per_trial"]})


def make_tuner(trainable, exp_dir: Path, settings: dict, scfg, base, spec, resume: bool,
               warm=None) -> tune.Tuner:
    """A new Tuner, or ``Tuner.restore`` (finished trials kept, unfinished ones rerun)."""
    if resume:
        budget.raise_budget(exp_dir, settings["num_samples"])
        return tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_unfinished=True,
                                  resume_errored=False)
    obj = objective(settings["objective"])
    storage = study_storage(exp_dir)
    if warm is not None:
        added = warm_start.seed_study(storage, exp_dir.name, obj, warm_start.frozen_trials(warm, spec, obj))
        print(f"warm start: {added} trials of {settings['warm_start']} seed the sampler", flush=True)
    searcher = build_searcher(spec, obj, settings["seed"], settings["max_concurrent"],
                              start_from=base_point(spec, flatten(dataclasses.asdict(base))),
                              sampler=scfg.sampler, storage=storage, study_name=exp_dir.name)
    run_config = tune.RunConfig(
        name=exp_dir.name, storage_path=str(exp_dir.parent),
        callbacks=[TBXLoggerCallback(), StatusTable(obj)],
        failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1), verbose=1,
    )
    scheduler = build_scheduler(obj, scfg.asha, base.train.max_epochs, scfg.rungs.enabled)
    tune_config = tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=settings["num_samples"],
                                  time_budget_s=settings.get("time_budget_s"))
    return tune.Tuner(trainable, param_space={"seed": settings["seed"]}, tune_config=tune_config,
                      run_config=run_config)


def main(argv=None) -> int:
    try:
        return run(parse_args(argv))
    except errors.USER_ERRORS as exc:
        return errors.report(exc)


def run(args: argparse.Namespace) -> int:
    """Check everything, prepare the inputs, then start Ray, record the run and search."""
    check_args(args)
    exp_dir = experiment_dir(args)
    settings = run_settings(args, exp_dir)
    if settings["num_samples"] is None:
        settings["num_samples"] = load_search_config(settings["config"]).smoke.num_samples if settings["smoke_test"] else 50
    scfg, base, spec, eval_cfg = load_configs(settings)
    warm = warm_start.earlier_trials(args.warm_start, settings["objective"]) if args.warm_start else None
    if not args.resume:
        use_world_config(args.world_config)  # a missing or bad file is a ConfigError naming it
    world_dir, logs_path = inputs.resolve_paths(settings["world"], settings["logs"], settings["smoke_test"])
    settings.update(world=str(world_dir), logs=str(logs_path))
    # loading the world and logs here turns a bad input into one line before Ray starts or a file is written
    shared = inputs.prepare(world_dir, logs_path, base, touches_features(spec), eval_cfg.sessions, eval_cfg.seed,
                            rung=(scfg.rungs.sessions, scfg.rungs.seed) if scfg.rungs.enabled else None,
                            tuning=(scfg.serving_search.sessions, scfg.serving_search.seed))
    cluster.start(args.address, args.dashboard_host, runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    exp_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(exp_dir / RUN_FILE, json.dumps(settings, indent=2) + "\n")
    setup = trial_setup(scfg, base, eval_cfg, shared, settings, exp_dir)
    tuner = make_tuner(make_trainable(shared, setup, settings), exp_dir, settings, scfg, base, spec, args.resume, warm)
    print(f"experiment: {exp_dir}\nTensorBoard: tensorboard --logdir {exp_dir}\nOptuna dashboard: "
          f"optuna-dashboard --storage-class JournalFileStorage {exp_dir / JOURNAL_FILE} --host 127.0.0.1", flush=True)
    tuner.fit()
    code = finish(exp_dir, settings)
    if args.confirm and code == 0:
        from search import confirm

        return confirm.main([str(exp_dir)] + (["--sessions", "300", "600"] if settings["smoke_test"] else []))
    print(f"confirm the winner on fresh sessions: python -m search.confirm {exp_dir}", flush=True)
    return code


def finish(exp_dir: Path, settings: dict) -> int:
    """Write trials.parquet, summary.md and best/; say how to resume if trials are missing.

    A search whose every trial ended without finishing (errored, or stopped) is an error: there
    is no ``best/`` to point at.
    """
    obj = objective(settings["objective"])
    frame = results.trials_frame(exp_dir)
    results.write_trials(frame, exp_dir)
    results.write_summary(frame, obj, exp_dir, header=f"Experiment `{exp_dir}`.\n")
    print((exp_dir / "summary.md").read_text(), flush=True)
    best = results.ranked(frame, obj)
    if not best.empty:
        results.export_row(best.iloc[0], exp_dir / "best", force=True)  # best/ belongs to the run
    done = int(frame["status"].isin(["finished", "stopped", "errored"]).sum()) if "status" in frame else 0
    if done < settings["num_samples"]:  # interrupted trials are left "running"/"pending"
        print(f"{done} of {settings['num_samples']} trials ended; continue with:\n"
              f"  python -m search.run --resume --storage-path {exp_dir.parent} --name {exp_dir.name}", flush=True)
    elif best.empty:
        raise SearchError(f"no trial finished ({results.status_counts(frame)}); {results.first_error(frame)}"
                          f"see {exp_dir / 'summary.md'}")
    listed = [exp_dir / results.TRIALS_FILE, exp_dir / "summary.md"] + ([exp_dir / "best"] if not best.empty else [])
    print(f"results: {', '.join(map(str, listed))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
