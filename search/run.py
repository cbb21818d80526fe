"""The search driver: ``python -m search.run --num-samples 50``.

Starts (or joins) Ray, prepares the shared inputs once, runs Optuna's TPE through Tune on the
DSSM trainable, and leaves under ``STORAGE/NAME``: Tune's experiment files (with TensorBoard
event files per trial), ``trials.parquet`` and ``summary.md`` (:mod:`search.trials`) and ``best/``
(:mod:`search.experiment`).
``--resume`` continues a stopped run (Ctrl-C, killed driver) without rerunning finished trials; a
larger ``--num-samples`` extends it, and a search the time budget stopped goes on with a fresh budget
(:func:`raise_budget`). The console shows each trial's start and epochs and a status table each
time a trial ends (:mod:`search.progress`; Ray's dashboard has no per-trial view; per-trial curves
go to TensorBoard).
Arguments, configs, the world and the logs are all checked before Ray starts and before anything
is written; a problem is one line on stderr and exit 2 (:mod:`search.errors`).
On a cluster (``--address``) the project reaches the workers as the job's working directory
(:func:`search.cluster.code_env`), ``--storage-path`` is a URI every node reaches (checked before
Ray starts; the experiment's complete copy is left in ``--local-dir``: :mod:`search.storage`) and
a trial whose node is lost is retried ``--max-failures`` times (default 1 there, 0 locally).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import ray.cloudpickle as cloudpickle
from ray import tune
from ray.tune.logger import TBXLoggerCallback

from model.config import flatten, load_experiment_config
from sim_bridge.contract.files import ConfigError, with_overrides
from sim_bridge.defaults import use_world_config

from search import cluster, errors, experiment, formatting, searcher, storage, trials
from search.config import (OBJECTIVES, check_serving_search, load_search_config, load_smoke, objective,
                           with_smoke)
from search.errors import SearchError
from search.space import parse_space, touches_features
from search.progress import StatusTable  # also the name older runs' tuner.pkl look up
from search.trainable import make_trainable
from model.features import check_pop_transform
from search.data_cache import source_digest
from search.trial import TrialSetup, prepare

REPO = Path(__file__).resolve().parent.parent
RUN_FILE, TUNER_FILE = experiment.RUN_FILE, experiment.TUNER_FILE


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
    p.add_argument("--storage-path", default="./runs",
                   help="experiments folder, or a URI every node of a cluster reaches: s3://BUCKET/PREFIX "
                        "(AWS_* variables; ?endpoint_override=HOST:PORT&scheme=http), file:///SHARED/PATH")
    p.add_argument("--local-dir", default="./runs",
                   help="with a URI --storage-path: the folder of the experiment's local copy (default ./runs)")
    p.add_argument("--max-failures", type=int, default=None,
                   help="times a failed trial (e.g. its node lost) is retried: default 1 with --address, else 0")
    p.add_argument("--name", default=None, help="experiment name (default: search-DATE-TIME)")
    p.add_argument("--resume", action="store_true", help="continue NAME (default: the newest run)")
    p.add_argument("--seed", type=int, default=0, help="searcher seed and every trial's training seed")
    p.add_argument("--objective", choices=OBJECTIVES, default="score")
    p.add_argument("--smoke-test", action="store_true", help="tiny world, few epochs/sessions/samples")
    p.add_argument("--dashboard-host", default=cluster.DEFAULT_DASHBOARD_HOST)
    p.add_argument("--warm-start", default=None, metavar="EXPERIMENT_DIR",
                   help="seed the sampler with an earlier search's finished (and stopped) trials")
    p.add_argument("--time-budget-s", type=float, default=None,
                   help="stop the search after this many seconds (the running trials are stopped; "
                        "--resume starts the clock again, with this value or the stored one)")
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
    for flag, path in (("--storage-path", args.storage_path), ("--local-dir", args.local_dir)):
        if not storage.is_uri(path) and Path(path).exists() and not Path(path).is_dir():
            raise SearchError(f"{flag} {path}: is a file, expected a folder")
    if storage.is_uri(args.local_dir):
        raise SearchError(f"--local-dir {args.local_dir}: expected a local folder, got a URI")
    if args.max_failures is not None and args.max_failures < 0:
        raise SearchError(f"--max-failures must be >= 0, got {args.max_failures}")
    if args.resume and args.name is None and storage.is_uri(args.storage_path):
        raise SearchError("--resume with a URI --storage-path needs --name (the experiment to continue)")
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
    """``STORAGE/NAME`` (``LOCAL_DIR/NAME`` when ``--storage-path`` is a URI); ``--resume``
    without a name picks the newest experiment there."""
    folder = Path(args.local_dir if storage.is_uri(args.storage_path) else args.storage_path).resolve()
    if args.name:
        return folder / args.name
    if args.resume:
        return experiment.newest(folder)
    return folder / time.strftime("search-%Y%m%d-%H%M%S")


def locate(args) -> storage.Location:
    """The experiment's folder here and, with a URI ``--storage-path``, its URI — checked (bucket,
    endpoint, credentials, the right to write) before Ray starts; ``--resume`` of an experiment
    this machine has no copy of fetches it first (its Optuna journal included)."""
    exp_dir = experiment_dir(args)
    if not storage.is_uri(args.storage_path):
        return storage.Location(exp_dir)
    storage.check(args.storage_path)
    location = storage.Location(exp_dir, storage.join(args.storage_path, exp_dir.name))
    if args.resume and not (exp_dir / RUN_FILE).is_file() and storage.exists(location.remote, RUN_FILE):
        storage.download(location.remote, exp_dir, skip=())
    return location


def started(location: storage.Location) -> bool:
    """Whether Tune started the experiment (its ``tuner.pkl`` is where Tune keeps the experiment)."""
    if location.remote is not None:
        return storage.exists(location.remote, TUNER_FILE)
    return (location.local / TUNER_FILE).is_file()


def run_settings(args, exp_dir: Path, is_started: bool | None = None) -> dict:
    """This run's settings; on --resume the stored ones win except the (raised) sample budget,
    ``--time-budget-s`` and ``--max-failures`` when given. ``is_started``: whether Tune started it
    (default: its ``tuner.pkl`` is in ``exp_dir``).

    Paths are stored absolute, so ``--resume``, ``search.confirm`` and ``search.export`` find the
    same world, logs and config from any directory.
    """
    started = (exp_dir / TUNER_FILE).is_file() if is_started is None else is_started
    if not args.resume:
        if started:
            raise SearchError(f"{exp_dir} already holds a run: pass --resume or another --name")
        fresh = {k: getattr(args, k) for k in ("config", "world", "logs", "seed", "objective", "smoke_test",
                                               "cpus_per_trial", "gpus_per_trial", "max_concurrent",
                                               "warm_start", "time_budget_s")}
        fresh.update(num_samples=args.num_samples, started_at=time.time(), max_failures=max_failures(args),
                     storage=args.storage_path if storage.is_uri(args.storage_path) else None)
        return {**fresh, **{k: _absolute(fresh[k]) for k in ("config", "world", "logs", "warm_start")}}
    if not (exp_dir / RUN_FILE).is_file():
        raise SearchError(f"--resume: {exp_dir} holds no search run ({RUN_FILE} not found)")
    if not started:
        raise SearchError(f"--resume: the run in {exp_dir} never started ({TUNER_FILE} not found); "
                          "start it again without --resume")
    stored = experiment.read_run_file(exp_dir)
    for key in ("config", "world", "logs"):
        experiment.stored_path(stored, key, exp_dir)
    if args.num_samples is not None:
        stored["num_samples"] = max(args.num_samples, stored["num_samples"])
    if args.time_budget_s is not None:
        stored["time_budget_s"] = args.time_budget_s
    if args.max_failures is not None or "max_failures" not in stored:
        stored["max_failures"] = max_failures(args)
    return stored


def max_failures(args) -> int:
    """``--max-failures``, else 1 on a cluster (a lost node costs a retry) and 0 on one machine
    (a failed trial there is a bug or a bad config, and would fail again)."""
    if args.max_failures is not None:
        return args.max_failures
    return 1 if args.address else 0


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


def load_configs(settings: dict):
    """(search config, base training config, validated space) — before Ray starts; in smoke mode
    with ``configs/smoke.yaml``'s ``search:`` laid over the search config."""
    scfg = load_search_config(settings["config"])
    if settings["smoke_test"]:
        scfg = with_smoke(scfg, load_smoke().search)
    base = load_experiment_config(scfg.base, scfg.variant)
    try:
        base = with_overrides(base, scfg.overrides)
    except ConfigError as exc:
        raise ConfigError(f"{settings['config']}: overrides: {exc}") from None
    check_serving_search(scfg.serving_search, base.serving)
    return scfg, base, parse_space(scfg.space, base)


def trial_setup(scfg, per_trial_data: bool) -> TrialSetup:
    """What every trial shares: configs, rungs, the serving search, the training-data cache."""
    from sim_bridge.defaults import cache_root

    return TrialSetup(scfg.eval, scfg.objective, rungs=scfg.rungs if scfg.rungs.enabled else None,
                      serving_search=scfg.serving_search,
                      data_cache=str(cache_root() / "training-data") if per_trial_data else None)


def load_inputs(world_dir: Path, logs_path: Path, setup: TrialSetup, base, per_trial_data: bool):
    """Load the world and logs, simulate the controls once, build shared training data (or, when
    each trial builds its own, key the on-disk cache by a digest of the logs and the catalog)."""
    from sim_bridge.contract.logs import read_logs
    from sim_bridge.world import load_world

    t0 = time.perf_counter()
    world, events = load_world(world_dir), read_logs(logs_path)
    check_pop_transform(world.catalog.pop, base.features.pop_transform)
    if per_trial_data:
        setup = dataclasses.replace(setup, source_digest=source_digest(events, world.catalog))
    inputs = prepare(world, events, setup, None if per_trial_data else base.features)
    print(f"inputs: world {world_dir} ({world.catalog.n_tracks} tracks), logs {logs_path} "
          f"({len(events)} events), control sticky_artist {setup.eval.sessions} sessions "
          f"(mean time {inputs.control['time'].mean():.3f}) in {time.perf_counter() - t0:.1f}s", flush=True)
    return inputs, setup


def builtin_logs_arms(smoke: bool) -> list[str]:
    """The policies of the built-in (smoke) world's logging run: what wrote the built-in logs."""
    from sim_bridge import defaults

    config = defaults.SMOKE_LOGGING if smoke else defaults.logging_config(defaults.world_config_path())
    return list(config.arms)


def resolve_paths(world: str | None, logs: str | None, smoke: bool) -> tuple[Path, Path]:
    """``--world``/``--logs`` as absolute paths, or the built-in (smoke) world and its logs,
    generated and cached; a given path that does not exist is a SearchError."""
    from sim_bridge import defaults

    if world is not None and logs is None:  # the built-in logs belong to the built-in world
        raise SearchError("--world needs --logs: training logs from that world")
    for flag, path, is_ok, kind in (("--world", world, Path.is_dir, "folder"), ("--logs", logs, Path.exists, "file")):
        if path is not None and not is_ok(Path(path)):
            raise SearchError(f"{flag} {path}: no such {kind}")
    if world is None:
        world = defaults.ensure_smoke_world() if smoke else defaults.ensure_default_world()
    if logs is None:
        logs = defaults.ensure_smoke_logs() if smoke else defaults.ensure_default_logs()
    return Path(world).resolve(), Path(logs).resolve()


def make_tuner(trainable, exp_dir: Path, settings: dict, scfg, base, spec, resume: bool,
               warm=None, remote: str | None = None) -> tune.Tuner:
    """A new Tuner, or ``Tuner.restore`` (finished trials kept, unfinished ones rerun).

    ``remote``: the experiment's URI when Tune keeps it there (``exp_dir`` then holds the
    driver's files, mirrored to it by :class:`search.storage.Mirror`).
    """
    location = storage.Location(Path(exp_dir), remote)
    if resume:
        raise_budget(location.tune_path, settings["num_samples"] + trials_cut_by_budget(exp_dir, settings))
        return tune.Tuner.restore(location.tune_path, trainable=trainable, resume_unfinished=True,
                                  resume_errored=False)
    obj = objective(settings["objective"])
    study = searcher.study_storage(exp_dir)
    first = [searcher.base_point(spec, flatten(dataclasses.asdict(base)))]  # the seed's own configuration
    if warm is not None:
        added = searcher.seed_study(study, exp_dir.name, obj, searcher.frozen_trials(warm, spec, obj))
        first.insert(0, searcher.warm_best(warm, spec, obj))  # the earlier winner, measured on these logs
        print(f"warm start: {added} trials of {settings['warm_start']} seed the sampler"
              + ("; its best trial's values are the first trial" if first[0] else ""), flush=True)
    search_alg = searcher.build_searcher(spec, obj, settings["seed"], settings["max_concurrent"], start_from=first,
                                         sampler=scfg.sampler, storage=study, study_name=exp_dir.name)
    callbacks = [TBXLoggerCallback(), StatusTable(obj, started_at=settings.get("started_at"),
                                                  asha_file=exp_dir / experiment.ASHA_STOPS_FILE)]
    callbacks += [storage.Mirror(str(exp_dir), remote)] if remote else []
    run_config = tune.RunConfig(
        name=exp_dir.name, storage_path=location.storage_path, callbacks=callbacks,
        stop=searcher.TimeBudget(exp_dir),  # --time-budget-s, read from search_run.json (a new one on --resume)
        # a trial that fails (its node lost) is started again, on any node, that many times
        failure_config=tune.FailureConfig(max_failures=settings.get("max_failures", 0), fail_fast=False),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1), verbose=0,  # StatusTable prints instead
    )
    scheduler = searcher.build_scheduler(obj, scfg.asha, base.train.max_epochs, scfg.rungs.enabled,
                                         record=exp_dir / experiment.ASHA_STOPS_FILE)
    # reuse_actors: a trial starts in the worker process the last one ended in, not a fresh one that
    # imports torch, Ray and the project again, every trial, beside a running trial (see docs/results.md)
    tune_config = tune.TuneConfig(search_alg=search_alg, scheduler=scheduler, num_samples=settings["num_samples"],
                                  reuse_actors=True)
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
    location = locate(args)
    exp_dir = location.local
    settings = run_settings(args, exp_dir, started(location))
    if settings["num_samples"] is None:
        settings["num_samples"] = load_smoke().search.num_samples if settings["smoke_test"] else 50
    scfg, base, spec = load_configs(settings)
    warm = searcher.earlier_trials(args.warm_start, settings["objective"]) if args.warm_start else None
    if not args.resume:
        use_world_config(args.world_config)  # a missing or bad file is a ConfigError naming it
    if settings["logs"] is None and not args.resume:  # the built-in logs: record their logging run's arms
        settings["logs_arms"] = builtin_logs_arms(settings["smoke_test"])
    world_dir, logs_path = resolve_paths(settings["world"], settings["logs"], settings["smoke_test"])
    settings.update(world=str(world_dir), logs=str(logs_path))
    print(formatting.logs_text(settings["logs"], settings.get("logs_arms")), flush=True)
    # loading the world and logs here turns a bad input into one line before Ray starts or a file is written
    per_trial_data = touches_features(spec)
    inputs, setup = load_inputs(world_dir, logs_path, trial_setup(scfg, per_trial_data), base, per_trial_data)
    if args.address and location.remote is None:
        print(f"WARNING: --storage-path {args.storage_path} is a folder on this machine: trials on other nodes "
              "can write their checkpoints there only if every node mounts it at the same path; "
              "otherwise give a URI (s3://BUCKET/PREFIX, file:///SHARED/PATH; docs/cluster.md)", flush=True)
    cluster.start(args.address, args.dashboard_host, runtime_env=cluster.code_env(REPO))
    exp_dir.mkdir(parents=True, exist_ok=True)
    experiment.write_run_file(exp_dir, settings)
    location.push()
    trainable = make_trainable(inputs, setup, base, exp_dir, settings["cpus_per_trial"], settings["gpus_per_trial"])
    tuner = make_tuner(trainable, exp_dir, settings, scfg, base, spec, args.resume, warm, remote=location.remote)
    print(f"experiment: {location.shown()}\nTensorBoard: tensorboard --logdir {exp_dir}\nOptuna dashboard: "
          f"optuna-dashboard --storage-class JournalFileStorage {exp_dir / experiment.JOURNAL_FILE} --host 127.0.0.1",
          flush=True)
    try:
        tuner.fit()  # Ctrl-C: Tune stops the trials, saves its state and returns
    finally:
        mark_interrupted(exp_dir)
        location.push()
    code = finish(exp_dir, settings, location)
    if args.confirm and code == 0:
        from search import confirm

        sizes = load_smoke().search.confirm_sessions if settings["smoke_test"] else []
        return confirm.main([str(exp_dir)] + (["--sessions", *map(str, sizes)] if sizes else []))
    print(f"confirm the winner on fresh sessions: python -m search.confirm {exp_dir}", flush=True)
    return code


def finish(exp_dir: Path, settings: dict, location: storage.Location | None = None) -> int:
    """Write trials.parquet, summary.md and best/; say how to resume if trials are missing.

    A search that ends with no finished trial is an error (one line, exit 2): there is no
    ``best/`` to point at. When it stopped early (Ctrl-C, ``--time-budget-s``) its state is kept
    and the line says how to resume it. When Tune kept the experiment at a URI (``location``),
    ``exp_dir`` is first made a complete copy of it, and the results are uploaded beside it.
    """
    location = location or storage.Location(exp_dir)
    location.pull()
    try:
        return _finish(exp_dir, settings, location)
    finally:
        location.push((experiment.TRIALS_FILE, experiment.SUMMARY_FILE, experiment.BEST_DIR))


def _finish(exp_dir: Path, settings: dict, location: storage.Location) -> int:
    frame, best = trials.write_results(exp_dir, objective(settings["objective"]),
                                       header=f"Experiment `{exp_dir}`; "
                                       f"{formatting.logs_text(settings['logs'], settings.get('logs_arms'))}.\n")
    print((exp_dir / experiment.SUMMARY_FILE).read_text(), flush=True)
    done = trials.ended(frame)
    stopped_early = done < settings["num_samples"]  # interrupted trials are left "running"/"pending"
    resume = f"python -m search.run --resume --storage-path {exp_dir.parent} --name {exp_dir.name}"
    if location.remote is not None:
        resume = (f"python -m search.run --resume --storage-path '{location.storage_path}' "
                  f"--local-dir {exp_dir.parent} --name {exp_dir.name}")
    if best.empty:
        raise SearchError(no_finished_trial(frame, settings, exp_dir, resume if stopped_early else None))
    if stopped_early:
        print(f"{done} of {settings['num_samples']} trials ended; continue with:\n  {resume}", flush=True)
    listed = [exp_dir / name for name in (experiment.TRIALS_FILE, experiment.SUMMARY_FILE)]
    listed += [exp_dir / experiment.BEST_DIR] if not best.empty else []
    print(f"results: {', '.join(map(str, listed))}", flush=True)
    if location.remote is not None:
        print(f"the experiment is at {storage.redact(location.remote)}; {exp_dir} is a complete copy of it", flush=True)
    return 0


def no_finished_trial(frame, settings: dict, exp_dir: Path, resume: str | None) -> str:
    """The one line of a search that ended with no finished trial; ``resume``: the command that
    goes on with it, when it stopped early."""
    counts = trials.status_counts(frame)
    if resume is None:
        return f"no trial finished ({counts}); {trials.first_error(frame)}see {exp_dir / experiment.SUMMARY_FILE}"
    budget = settings.get("time_budget_s")
    detail = counts + (f"; --time-budget-s {budget:g}" if budget else "")
    return f"no trial finished before the search stopped ({detail}); its state is kept: {resume}"


def mark_interrupted(exp_dir: Path) -> None:
    """Trials the Optuna journal still shows running once the search stopped were interrupted:
    mark them FAIL there (:func:`search.searcher.fail_unfinished`)."""
    failed = searcher.fail_unfinished(exp_dir)
    if failed:
        print(f"{failed} trial(s) were running when the search stopped: marked FAIL in "
              f"{exp_dir / experiment.JOURNAL_FILE} (--resume runs them again, or new trials in place of those "
              "the time budget cut short)", flush=True)


# ---------------------------------------------------------------- --resume: reopen the search generator
# Tune stores the number of samples inside its search-generator state (``search_gen_state-*.json``,
# a cloudpickled dict with ``counter``/``total_samples``/``finished`` and the concurrency limiter's
# ``live_trials``) and ``Tuner.restore`` offers no way to change it. When the time budget (or any
# stop of the whole experiment) ends a search, Tune marks the generator finished and stops every
# trial without telling the limiter, so a plain restore would create no new trial. This is the one
# place that touches that private file; the resume tests guard it against Ray upgrades.

STATE_GLOB = "search_gen_state-*.json"
LIMITER_KEY = "name:ConcurrencyLimiter"


def trials_cut_by_budget(exp_dir: Path, settings: dict) -> int:
    """How many trials of a budgeted run the time budget cut short (0 when ``exp_dir`` holds no Tune
    state yet: a URI experiment whose state this machine never pulled)."""
    if not settings.get("time_budget_s"):
        return 0
    try:
        return trials.budget_cut(trials.trials_frame(exp_dir))
    except SearchError:
        return 0


def raise_budget(exp_dir: str | Path, num_samples: int) -> None:
    """Reopen the search generator for ``--resume``: the budget becomes ``num_samples`` when larger
    (a smaller value cannot undo created trials; the caller adds one per trial the time budget cut
    short), and a generator that a stop closed before it had created its trials (``--time-budget-s``)
    creates the rest, its stopped trials no longer holding the concurrency limit. ``exp_dir``: the
    experiment's folder or URI (where Tune keeps it)."""
    filesystem, _ = storage.resolve(str(exp_dir))
    for path in storage.files(str(exp_dir), STATE_GLOB):
        with filesystem.open_input_stream(path) as src:
            state = cloudpickle.loads(src.readall())
        if not reopen(state, num_samples):
            continue
        tmp = f"{path.rsplit('/', 1)[0]}/.{path.rsplit('/', 1)[1]}.tmp{os.getpid()}"
        with filesystem.open_output_stream(tmp) as out:
            out.write(cloudpickle.dumps(state))
        filesystem.move(tmp, path)


def reopen(state: dict, num_samples: int) -> bool:
    """Change a search-generator ``state`` in place as :func:`raise_budget` says; True if it changed."""
    before = (state["total_samples"], state["finished"])
    state["total_samples"] = max(num_samples, state["total_samples"])
    state["finished"] = state["finished"] and state["counter"] >= state["total_samples"]
    if before[1] and not state["finished"] and LIMITER_KEY in state:
        # every trial was stopped with the generator: none of them is live any more
        state[LIMITER_KEY].update(live_trials=set(), num_unfinished_live_trials=0)
    return before != (state["total_samples"], state["finished"])


if __name__ == "__main__":
    sys.exit(main())
