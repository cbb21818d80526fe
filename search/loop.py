"""The feedback loop: ``python -m search.loop --rounds N --out DIR``.

Round r searches the DSSM on the accumulated logs (``search.run``, warm-started from round r-1's
trials), exports its winner (``search.export``), confirms it on fresh sessions (``search.confirm``,
the top trial), then runs a logging A/B in which the winner's serving takes ``winner_arms`` arms
beside the public ``baselines`` (``configs/loop.yaml``) — botify's user assignment under the
experiment ``<experiment>-round-<r>``, the sessions of the world's logging run (its
``LoggingConfig``; ``--round-sessions N`` for another count) and seed ``<its seed> + r`` — or,
with ``--logs-from ROOT``, reads the logs the deployed winner wrote (``search.serve ... --log-dir
ROOT/round-<r>``). The new events are appended to the round's logs (simulated ones shifted to
start a day after them) and round r+1 searches on the result. Round r's search runs with
``--seed SEED + r - 1``.

The loop folder::

    loop_run.json        the settings; a rerun with other settings is refused
    state.json           each round's finished steps and what they measured
    loop.json, loop.md   the table: one row per finished round
    round-<r>/search/    the round's experiment (search.run; search.confirm writes confirm/ in it)
    round-<r>/best/      its winner (search.export)
    round-<r>/logging.parquet, logging.json   the new events and where they came from
    round-<r>/logs.parquet                    round r's search logs + the new events

Every file is written atomically and a step counts as done once ``state.json`` records it, so
rerunning the command after a kill continues with the first unfinished step (a search killed
mid-way resumes with ``search.run --resume``); a finished round is never redone.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sim_bridge import defaults
from sim_bridge.contract import columns as C
from sim_bridge.contract.files import atomic_write_text, load_yaml
from sim_bridge.contract.logs import write_logs
from sim_bridge.contract.recs import ServingConfig
from sim_bridge.policy_specs import BASELINES, policy_spec

from search import errors, experiment
from search.errors import SearchError
from search.formatting import lift_text
from search.loop_logs import (append_logs, check_logging_seeds, n_events, read_round_logs, read_service_logs,
                              round_logging, simulate_round)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO / "configs" / "loop.yaml"
RUN_FILE, STATE_FILE, TABLE_JSON, TABLE_MD, LOCK_FILE = "loop_run.json", "state.json", "loop.json", "loop.md", ".lock"
STEPS = ("search", "export", "confirm", "logging", "append")
FLAGS = {"num_samples": "--num-samples", "time_budget_s": "--time-budget-s", "logs": "--logs",
         "world_config": "--world-config", "smoke_test": "--smoke-test", "seed": "--seed", "loop_config": "--config",
         "round_sessions": "--round-sessions"}


class LoopError(SearchError):
    """A bad argument, loop folder or service log folder; the message names it."""


@dataclass(frozen=True)
class LoopConfig:
    """``configs/loop.yaml``: the arms of each round's logging A/B."""

    baselines: list[str] = field(default_factory=lambda: ["random", "sticky_artist", "toppop_catalog"])
    winner_arms: int = 3

    def __post_init__(self) -> None:
        if self.winner_arms < 1:
            raise ValueError(f"winner_arms must be >= 1, got {self.winner_arms}")
        for spec in self.baselines:
            if spec.partition(":")[0] not in BASELINES:
                raise ValueError(f"baselines: {spec!r} is not a public baseline ({', '.join(BASELINES)})")


def after_step(round_: int, step: str) -> None:
    """Called once a step is recorded (a test raises here to simulate a kill between steps)."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m search.loop", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, required=True, help="rounds in all; a rerun with more extends the loop")
    p.add_argument("--num-samples", type=int, default=None, help="trials per round (default: search.run's)")
    p.add_argument("--time-budget-s", type=float, default=None, help="each round's search stops after S seconds")
    p.add_argument("--out", type=Path, default=Path("loop"), help="the loop folder; rerun with it to continue")
    p.add_argument("--logs", default=None, help="round 1's logs (default: the world's logging run)")
    p.add_argument("--world-config", default=None, help="the built-in world's config (default configs/world.yaml)")
    p.add_argument("--smoke-test", action="store_true", help="the tiny world and search.run --smoke-test")
    p.add_argument("--seed", type=int, default=0, help="round r's search seed is SEED + r - 1")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="the logging A/B's arms (configs/loop.yaml)")
    p.add_argument("--round-sessions", type=int, default=None, metavar="N",
                   help="sessions each round's logging A/B runs (default: the world's logging run's)")
    p.add_argument("--logs-from", type=Path, default=None, metavar="ROOT",
                   help="append ROOT/round-<r> (search.serve --log-dir of round r's winner) instead of simulating")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    if args.rounds < 1:
        raise LoopError(f"--rounds must be >= 1, got {args.rounds}")
    if args.num_samples is not None and args.num_samples < 1:
        raise LoopError(f"--num-samples must be >= 1, got {args.num_samples}")
    if args.time_budget_s is not None and not args.time_budget_s > 0:
        raise LoopError(f"--time-budget-s: expected seconds > 0, got {args.time_budget_s}")
    if args.round_sessions is not None and args.round_sessions < 1:
        raise LoopError(f"--round-sessions must be >= 1, got {args.round_sessions}")
    if args.smoke_test and args.world_config:
        raise LoopError("--smoke-test searches the tiny world; --world-config picks another: use one of them")
    if args.logs is not None and not Path(args.logs).exists():
        raise LoopError(f"--logs {args.logs}: no such file or folder")
    if args.out.exists() and not args.out.is_dir():
        raise LoopError(f"--out {args.out}: is a file, expected a folder")
    if args.logs_from is not None and not args.logs_from.is_dir():
        raise LoopError(f"--logs-from {args.logs_from}: no such folder (round r's logs go to "
                        f"{args.logs_from}/round-<r>, as search.serve --log-dir writes them)")


def base_logging(smoke: bool, world_config: str | None) -> defaults.LoggingConfig:
    """The world's logging run: its sessions, experiment name and seed are each round's base."""
    if smoke:
        return defaults.SMOKE_LOGGING
    defaults.use_world_config(world_config)  # a missing or bad file is a ConfigError naming it
    return defaults.logging_config(defaults.world_config_path())


def confirm_sizes(smoke: bool) -> list[int]:
    from search import confirm
    from search.config import load_smoke

    return list(load_smoke().search.confirm_sessions) if smoke else list(confirm.DEFAULT_SESSIONS)


def open_loop(out: Path, settings: dict) -> None:
    """Create the loop folder, or check that the one there was made with these settings."""
    run_file = out / RUN_FILE
    if run_file.is_file():
        stored = experiment.read_json_object(run_file)
        diff = [f"{FLAGS[k]} {json.dumps(stored.get(k))} there, {json.dumps(settings[k])} now"
                for k in FLAGS if stored.get(k) != settings[k]]
        if diff:
            raise LoopError(f"{out} holds a loop made with other settings ({'; '.join(diff)}): rerun it with its "
                            "settings, or choose another --out (nothing was changed)")
        return
    if out.is_dir() and any(out.iterdir()):
        raise LoopError(f"--out {out}: exists, is not empty and holds no loop ({RUN_FILE}); choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_file, json.dumps({**settings, "created_at": time.time()}, indent=2) + "\n")


@contextlib.contextmanager
def locked(out: Path):
    """One loop process per folder at a time (the lock goes with the process, even on kill -9)."""
    with open(out / LOCK_FILE, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LoopError(f"{out}: another search.loop is running on this folder") from None
        yield


@dataclass
class Loop:
    out: Path
    settings: dict
    config: LoopConfig
    base: defaults.LoggingConfig
    logs_from: Path | None
    state: dict

    def dir(self, r: int) -> Path:
        return self.out / f"round-{r}"

    def exp(self, r: int) -> Path:
        return self.dir(r) / "search"

    def record(self, r: int) -> dict:
        return self.state["rounds"].get(str(r), {})

    def logs_in(self, r: int) -> Path | None:
        """The logs round r searches on (round 1 without --logs: the world's, known after its search)."""
        if r > 1:
            return self.dir(r - 1) / "logs.parquet"
        searched = self.record(1).get("search")
        return Path(searched["logs"]) if searched else (Path(self.settings["logs"]) if self.settings["logs"] else None)


def load_state(out: Path) -> dict:
    path = out / STATE_FILE
    return experiment.read_json_object(path) if path.is_file() else {"rounds": {}}


# ---------------------------------------------------------------- the steps


def step_search(loop: Loop, r: int) -> dict:
    """search.run on the round's logs, warm-started from the last round; resumed if it was killed."""
    import ray

    from search import run as search_run
    from search import trials

    exp, s = loop.exp(r), loop.settings
    resume = (exp / experiment.TUNER_FILE).is_file()
    if exp.exists() and not resume:
        shutil.rmtree(exp)  # killed before Tune started: nothing in it to keep
    argv = ["--storage-path", str(exp.parent), "--name", exp.name]
    if resume:
        argv.append("--resume")
    else:
        logs = loop.logs_in(r)
        argv += ["--seed", str(s["seed"] + r - 1)] + (["--logs", str(logs)] if logs else [])
        argv += ["--num-samples", str(s["num_samples"])] if s["num_samples"] else []
        argv += ["--time-budget-s", str(s["time_budget_s"])] if s["time_budget_s"] else []
        argv += ["--smoke-test"] if s["smoke_test"] else []
        argv += ["--world-config", s["world_config"]] if s["world_config"] else []
        argv += ["--warm-start", str(loop.exp(r - 1))] if r > 1 else []
    print(f"loop: round {r}: python -m search.run {' '.join(argv)}", flush=True)
    try:
        code = search_run.run(search_run.parse_args(argv))
    finally:
        if ray.is_initialized():
            ray.shutdown()
    settings = experiment.read_run_file(exp)
    frame = trials.load_trials(exp)
    ended = trials.ended(frame)
    if code != 0 or (settings.get("time_budget_s") is None and ended < settings["num_samples"]):
        raise LoopError(f"round {r}'s search ended with {ended} of {settings['num_samples']} trials (exit {code}); "
                        "rerun this command to resume it")
    return {"experiment": str(exp), "logs": settings["logs"], "events": n_events(Path(settings["logs"])),
            "seed": settings["seed"], "warm_start": settings.get("warm_start"), "trials_ended": ended}


def step_export(loop: Loop, r: int) -> dict:
    from search import export

    best = loop.dir(r) / "best"
    export.run(export.parse_args([str(loop.exp(r)), "--out", str(best)] + (["--force"] if best.exists() else [])))
    metrics = experiment.read_json_object(best / "metrics.json")
    serving = experiment.served_config(best).serving
    return {"best": str(best), "trial_id": str(metrics["trial_id"]), "lift": metrics["lift_vs_sticky"],
            "lower": metrics["lift_lower"], "upper": metrics["lift_upper"], "winner": winner_spec(best, serving),
            "serving": dataclasses.asdict(serving)}


def winner_spec(best: Path, serving: ServingConfig) -> str:
    """The export as a ``sim_bridge`` policy spec, served as the search chose (``i2i:FILE:LIKE:SKIP``, ...)."""
    if not serving.needs_item_lists:
        return f"{serving.policy}:{best / experiment.USER_RECS_JSON}"
    spec = f"{serving.policy}:{best / experiment.ITEM_RECS_JSON}"
    return f"{spec}:{serving.like_threshold!r}:{serving.skip_artists}" if serving.policy == "i2i" else spec


def step_confirm(loop: Loop, r: int) -> dict:
    """search.confirm of the winner (its top trial), written to ``round-<r>/search/confirm/``. The A/Bs'
    experiment is ``confirm-round-<r>``, not named after Tune's random trial id, so that botify's user
    assignment, like every draw, follows from the seeds."""
    from sim_bridge.world import load_world

    from search import confirm

    exp, sizes = loop.exp(r), confirm_sizes(loop.settings["smoke_test"])
    settings = experiment.read_run_file(exp)
    top = confirm.top_trials(exp, settings, 1)
    world = load_world(confirm.resolve_world(settings, None, exp))
    named = top.assign(trial_id=f"round-{r}")
    table = confirm.confirm(exp, world, named, sizes, confirm.DEFAULT_SEED)
    header = (f"# Confirmation of round {r}'s winner, trial {top['trial_id'].iloc[0]} of `{exp}`\n\nFresh unpaired "
              f"A/Bs vs sticky_artist (botify assignment, 50/50), seeds {confirm.DEFAULT_SEED}.."
              f"{confirm.DEFAULT_SEED + len(sizes) - 1}.")
    lines = confirm.verdicts(table, named, sizes)
    confirm.write_outputs(exp / "confirm", table, header, lines, force=True)  # the loop's own folder
    print("\n".join(lines), flush=True)
    row = table[table["metric"] == C.MEAN_TIME_PER_SESSION].iloc[-1]  # the largest A/B
    return {"effect": float(row["effect"]), "lower": float(row["lower"]), "upper": float(row["upper"]),
            "significant": bool(row["significant"]), "sessions": sizes[-1], "trial_id": str(top["trial_id"].iloc[0]),
            "experiment": f"confirm-round-{r}", "seed": confirm.DEFAULT_SEED}


def step_logging(loop: Loop, r: int) -> dict:
    spec = loop.record(r)["export"]["winner"]
    if loop.logs_from is not None:
        record = service_logging(loop, r, spec)
    else:
        from sim_bridge.world import load_world

        cfg = round_logging(loop.base, loop.config.baselines, loop.config.winner_arms, spec, r,
                            loop.settings["round_sessions"])
        world = load_world(experiment.read_run_file(loop.exp(r))["world"])
        events = simulate_round(world, cfg, loop.dir(r) / "logging.parquet")
        record = {"source": "simulated", **dataclasses.asdict(cfg), "events": len(events)}
    atomic_write_text(loop.dir(r) / "logging.json", json.dumps(record, indent=2) + "\n")
    return record


def service_logging(loop: Loop, r: int, spec: str) -> dict:
    folder = loop.logs_from / f"round-{r}"
    earlier = {int(k): rec["logging"] for k, rec in loop.state["rounds"].items()
               if k != str(r) and rec.get("logging", {}).get("source") == "service"}
    world = Path(experiment.read_run_file(loop.exp(r))["world"])
    events, digest = read_round_logs(folder, r, loop.dir(r) / "best", world, earlier)
    write_logs(events, loop.dir(r) / "logging.parquet")
    return {"source": "service", "folder": str(folder), "digest": digest, "winner": spec, "events": len(events)}


def step_append(loop: Loop, r: int) -> dict:
    """The round's logs + the new events, written atomically as ``round-<r>/logs.parquet``."""
    return append_logs(loop.logs_in(r), loop.dir(r) / "logging.parquet", loop.dir(r) / "logs.parquet",
                       later=loop.record(r)["logging"]["source"] == "simulated")


STEP_FUNCTIONS = dict(zip(STEPS, (step_search, step_export, step_confirm, step_logging, step_append)))


# ---------------------------------------------------------------- the table


def table_rows(loop: Loop) -> list[dict]:
    """One row per finished round."""
    rows = []
    for key in sorted(loop.state["rounds"], key=int):
        rec = loop.state["rounds"][key]
        if not all(step in rec for step in STEPS):
            continue
        s, e, c, g, a = (rec[step] for step in STEPS)
        rows.append({"round": int(key), "logs": s["logs"], "events": s["events"], "logging": g["source"],
                     "new_events": a["added"], "winner": e["winner"], "trial_id": e["trial_id"],
                     "serving": policy_spec(ServingConfig(**e["serving"])),
                     "best_lift": e["lift"], "best_lower": e["lower"], "best_upper": e["upper"],
                     "confirmed_lift": c["effect"], "confirmed_lower": c["lower"], "confirmed_upper": c["upper"],
                     "confirm_sessions": c["sessions"], "wall_s": round(sum(rec[step]["wall_s"] for step in STEPS), 1)})
    return rows


def markdown(loop: Loop, rows: list[dict]) -> str:
    def where(path: str) -> str:
        p = Path(path)
        return str(p.relative_to(loop.out)) if loop.out in p.parents else str(p)

    lines = [f"# Feedback loop `{loop.out}`", "",
             "| round | logs | events | logging (new events) | winner (trial) | best paired lift % [95% CI] "
             "| confirmed lift % [95% CI] | wall time |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['round']} | {where(row['logs'])} | {row['events']:,} | {row['logging']} "
                     f"(+{row['new_events']:,}) | {row['serving']} ({row['trial_id']}) "
                     f"| {lift_text(row['best_lift'], row['best_lower'], row['best_upper'])} "
                     f"| {lift_text(row['confirmed_lift'], row['confirmed_lower'], row['confirmed_upper'])} "
                     f"at {row['confirm_sessions']:,} | {_duration(row['wall_s'])} |")
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def write_table(loop: Loop) -> str:
    """``loop.json`` and ``loop.md`` (when they changed); returns the Markdown."""
    rows = table_rows(loop)
    text = markdown(loop, rows)
    if (loop.out / TABLE_MD).is_file() and (loop.out / TABLE_MD).read_text() == text:
        return text
    atomic_write_text(loop.out / TABLE_JSON, json.dumps({"out": str(loop.out), "settings": loop.settings,
                                                         "rounds": rows}, indent=2) + "\n")
    atomic_write_text(loop.out / TABLE_MD, text)
    return text


# ---------------------------------------------------------------- the command


def precheck(loop: Loop, rounds: int) -> None:
    """Before any work: the next round's service logs, if any, are readable and can be its winner's;
    a loop that appended a service's logs is never fed simulated ones."""
    pending = next((r for r in range(1, rounds + 1) if "logging" not in loop.record(r)), None)
    if pending is None:
        return
    if loop.logs_from is None:
        served = [k for k, rec in loop.state["rounds"].items() if rec.get("logging", {}).get("source") == "service"]
        if served:
            raise LoopError(f"round {served[0]} appended a service's logs (--logs-from): pass --logs-from ROOT for "
                            f"round {pending} too (a loop fed real logs is not fed simulated ones)")
        return
    folder = loop.logs_from / f"round-{pending}"
    if folder.exists() and "export" not in loop.record(pending):
        raise LoopError(f"--logs-from: {folder} exists, but round {pending} has no winner yet: those logs cannot "
                        "be its winner's")
    if folder.exists():
        read_service_logs(folder, None)  # a malformed folder fails here, not after a search


def run(args: argparse.Namespace) -> int:
    check_args(args)
    config = load_yaml(args.config, LoopConfig)  # a missing or bad file: a ConfigError naming it
    out = args.out.resolve()
    absolute = {k: str(Path(v).resolve()) if v is not None else None
                for k, v in (("logs", args.logs), ("world_config", args.world_config))}
    settings = {"num_samples": args.num_samples, "time_budget_s": args.time_budget_s, **absolute,
                "smoke_test": args.smoke_test, "seed": args.seed, "loop_config": dataclasses.asdict(config),
                "round_sessions": args.round_sessions}
    base = base_logging(args.smoke_test, settings["world_config"])
    check_logging_seeds(base, args.rounds, len(confirm_sizes(args.smoke_test)))
    open_loop(out, settings)
    with locked(out):
        logs_from = args.logs_from.resolve() if args.logs_from is not None else None
        loop = Loop(out, settings, config, base, logs_from, load_state(out))
        precheck(loop, args.rounds)
        todo = [r for r in range(1, args.rounds + 1) if not all(step in loop.record(r) for step in STEPS)]
        print(f"loop: rounds {todo} to do in {out}" if todo else
              f"loop: all {args.rounds} rounds are done in {out}; nothing to do", flush=True)
        for r in todo:
            for step in STEPS:
                if step in loop.record(r):
                    continue
                print(f"loop: round {r}/{args.rounds}: {step} ...", flush=True)
                t0 = time.perf_counter()
                record = STEP_FUNCTIONS[step](loop, r)
                record["wall_s"] = round(time.perf_counter() - t0, 3)
                loop.state["rounds"].setdefault(str(r), {})[step] = record
                atomic_write_text(out / STATE_FILE, json.dumps(loop.state, indent=2) + "\n")
                print(f"loop: round {r}: {step} done in {record['wall_s']:.0f} s", flush=True)
                after_step(r, step)
            print(write_table(loop), flush=True)
        if not todo:  # a kill after the last step may have left the table behind: written only then
            print(write_table(loop), flush=True)
    print(f"results: {out / TABLE_MD}, {out / TABLE_JSON}", flush=True)
    return 0


def main(argv=None) -> int:
    try:
        return run(parse_args(argv))
    except errors.USER_ERRORS as exc:
        return errors.report(exc)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to continue from the last finished step", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
