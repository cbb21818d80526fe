"""``python -m sim_bridge``: world, simulate, logs, analyze, abtest, drive.

The argument parser first, then the work behind each subcommand. Bad input is one line
(``error: ...``) and exit status 2; outputs are written atomically and never replace a file the
user had unless ``--force`` says so. Each subcommand imports what it uses (scipy, pandas, faiss,
aiohttp take seconds to load), so ``--help`` and a bad flag answer at once.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


EXAMPLES = """examples:
  python -m sim_bridge world --out world/
  python -m sim_bridge simulate --experiment EXP --arms C=sticky_artist,T1=random --sessions 20000 --seed 1 --out logs.parquet
  python -m sim_bridge logs --config configs/logging_seed_scale.yaml --out seed_scale.parquet
  python -m sim_bridge analyze --logs logs.parquet --experiment EXP
  python -m sim_bridge abtest --control sticky_artist --treatment indexed:recs.json --sessions 8000 --seed 1
  python -m sim_bridge drive --url http://127.0.0.1:5001 --sessions 5000 --concurrency 8 --seed 1
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sim_bridge", description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    world = sub.add_parser("world", help="write the default (or a configured) world in the course format")
    world.add_argument("--out", required=True, type=Path, help="output folder (must be empty or new)")
    world.add_argument("--config", type=Path, help="generator YAML (default: configs/world.yaml)")
    sim = sub.add_parser("simulate", help="simulate an A/B experiment and write botify logs")
    _world_arg(sim)
    sim.add_argument("--experiment", required=True, help="experiment name (botify assignment)")
    sim.add_argument("--arms", required=True, help="C=POLICY,T1=POLICY,... (POLICY: name or indexed:RECS.json)")
    _run_args(sim)
    sim.add_argument("--out", required=True, type=Path, help="logs file: .parquet, or JSON lines (.json/.jsonl)")
    lg = sub.add_parser("logs", help="run a named logging config (configs/logging*.yaml): training logs")
    _world_arg(lg)
    lg.add_argument("--config", required=True, type=Path, help="logging YAML: experiment, arms, sessions, seed")
    lg.add_argument("--out", required=True, type=Path, help="logs file: .parquet, or JSON lines (.json/.jsonl)")
    ana = sub.add_parser("analyze", help="the course's A/B table from botify logs (real or simulated)")
    ana.add_argument("--logs", required=True, type=Path, help="logs file or folder of container data.json files")
    ana.add_argument("--experiment", required=True)
    ana.add_argument("--out", type=Path, help="also write the table (.csv or .md)")
    ana.add_argument("--force", action="store_true", help="replace an existing --out file")
    ab = sub.add_parser("abtest", help="simulate CONTROL vs TREATMENT and print the A/B table")
    _world_arg(ab)
    ab.add_argument("--control", required=True, help="policy of arm C")
    ab.add_argument("--treatment", required=True, help="policy of arm T1")
    ab.add_argument("--experiment", default="abtest", help="experiment name (default: abtest)")
    _run_args(ab)
    ab.add_argument("--out", type=Path, help="also write the table (.csv or .md)")
    ab.add_argument("--force", action="store_true", help="replace an existing --out file")
    drv = sub.add_parser("drive", help="run listener sessions against a botify service over HTTP")
    _world_arg(drv)
    drv.add_argument("--url", default="http://127.0.0.1:5001", help="the service (default http://127.0.0.1:5001)")
    drv.add_argument("--concurrency", type=int, default=8, help="sessions at once (default 8)")
    drv.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    drv.add_argument("--wait", type=float, default=0.0, help="wait up to this many seconds for the service to start")
    _run_args(drv)
    drv.add_argument("--out", type=Path, help="also write the client's per-session table (.parquet or .csv)")
    return parser


def _world_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--world", type=Path, help="world folder (default: the built-in world, generated once and cached)")
    p.add_argument("--world-config", type=Path, help="the built-in world's generator YAML (default: configs/world.yaml; "
                                                     "configs/world_v1.yaml for world v1)")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sessions", type=int, default=20_000, help="number of sessions (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    p.add_argument("--max-steps", type=int, default=1000, help="safety cap on steps per session")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, OSError, KeyError) as exc:  # our errors are ValueErrors naming file/line/field
        print(f"error: {exc}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------- the subcommands


def world(args: argparse.Namespace) -> int:
    from sim_bridge.defaults import world_config_path
    from sim_bridge.world import save_world
    from sim_bridge.worldgen import build_world, load_world_config

    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out}: folder is not empty; choose a new folder (nothing was overwritten)")
    config = load_world_config(args.config or world_config_path())
    save_world(build_world(config), out)
    print(f"wrote {config.n_tracks} tracks and {config.n_users} users to {out}")
    return 0


def _world(args: argparse.Namespace):
    """``--world``, or the built-in world of ``--world-config``."""
    from sim_bridge.defaults import ensure_default_world, use_world_config
    from sim_bridge.world import load_world

    if args.world is None:
        use_world_config(args.world_config)
    return load_world(args.world or ensure_default_world())


def _simulator(args: argparse.Namespace):
    from sim_bridge.simulator import SimConfig, Simulator

    return Simulator(_world(args), SimConfig(max_steps=args.max_steps))


def _parse_arms(spec: str) -> list[str]:
    """``C=sticky_artist,T1=random`` → policy specs in arm order C, T1, T2, ..."""
    from sim_bridge.abtest import arm_names

    arms = {}
    for part in spec.split(","):
        name, sep, policy = part.partition("=")
        if not sep or not policy:
            raise ValueError(f"--arms: expected NAME=POLICY, got '{part}'")
        arms[name.strip()] = policy.strip()
    expected = arm_names(len(arms))
    if list(arms) != expected:
        raise ValueError(f"--arms: arms must be named {','.join(expected)} in that order, got {','.join(arms)}")
    return list(arms.values())


def simulate(args: argparse.Namespace) -> int:
    from sim_bridge.abtest import simulate_experiment
    from sim_bridge.contract.logs import write_logs
    from sim_bridge.simulator import result_events

    if args.out.exists():
        raise ValueError(f"{args.out}: already exists; choose another path (nothing was overwritten)")
    sim = _simulator(args)
    policies = [_policy("--arms", p, sim.world) for p in _parse_arms(args.arms)]
    result = simulate_experiment(sim, policies, args.experiment, args.sessions, args.seed, record_events=True)
    events = result_events(result, args.experiment)
    write_logs(events, args.out)
    print(f"wrote {len(events)} events of {args.sessions} sessions to {args.out} "
          f"(truncated sessions: {100 * result.truncated_share:.2f}%)")
    return 0


def _check_table_out(args: argparse.Namespace) -> None:
    """``--out`` of analyze/abtest: a .csv or .md path, new unless ``--force`` — checked before any work."""
    from sim_bridge.contract.files import check_output_file

    if args.out is None:
        return
    if args.out.suffix not in TABLE_SUFFIXES:
        raise ValueError(f"--out {args.out}: unsupported suffix {args.out.suffix!r} (use .csv or .md)")
    check_output_file(args.out, args.force)


def _policy(flag: str, spec: str, world):
    """``make_policy`` with the flag named in its error."""
    from sim_bridge.policy_specs import make_policy

    try:
        return make_policy(spec, world)
    except ValueError as exc:
        raise ValueError(f"{flag}: {exc}") from None


def analyze(args: argparse.Namespace) -> int:
    from sim_bridge import abtest
    from sim_bridge.contract import columns as C
    from sim_bridge.contract.events import sessionize
    from sim_bridge.contract.logs import read_logs

    _check_table_out(args)
    events = read_logs(args.logs)
    abtest.check_srm(sessionize(events, args.experiment).query(f"{C.ARM} != ''"))
    _show(abtest.analyze(events, args.experiment), args.out)
    return 0


def abtest_command(args: argparse.Namespace) -> int:
    from sim_bridge import abtest

    _check_table_out(args)
    sim = _simulator(args)
    control, treatment = _policy("--control", args.control, sim.world), _policy("--treatment", args.treatment, sim.world)
    result = abtest.simulate_experiment(sim, [control, treatment], args.experiment, args.sessions, args.seed)
    abtest.check_srm(result.sessions)
    metrics = abtest.user_metrics(result.sessions)
    table = abtest.ab_table(metrics, model_names={"T1": args.treatment})
    print(f"control: {args.control}   treatment: {args.treatment}   sessions: {args.sessions}   "
          f"truncated: {100 * result.truncated_share:.2f}%")
    _show(table, args.out)
    return 0


TABLE_SUFFIXES = (".csv", ".md")


def _show(table, out: Path | None) -> None:
    from sim_bridge.abtest import to_markdown, write_table

    print(to_markdown(table))
    if out is not None:
        write_table(table, out)
        print(f"wrote {out}", file=sys.stderr)


def drive(args: argparse.Namespace) -> int:
    from sim_bridge.defaults import ensure_default_world
    from sim_bridge.drive import DriveConfig, drive as drive_service
    from sim_bridge.world import load_world

    if args.out is not None and args.out.exists():
        raise ValueError(f"{args.out}: already exists; choose another path (nothing was overwritten)")
    config = DriveConfig(args.url, args.sessions, args.concurrency, args.seed, args.max_steps, args.timeout, args.wait)
    result = drive_service(load_world(args.world or ensure_default_world()), config)
    print(result.summary())
    if args.out is not None:
        write_sessions(result.sessions, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def write_sessions(sessions, path: Path) -> None:
    """A per-session table, atomically: ``.parquet``, else CSV."""
    from sim_bridge.contract.files import atomic_path

    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            sessions.to_parquet(tmp, index=False)
        else:
            sessions.to_csv(tmp, index=False)


def logs(args: argparse.Namespace) -> int:
    """A logging config's run, and the figures of its training data (the seed's: docs/seed.md)."""
    from sim_bridge.contract.files import load_yaml
    from sim_bridge.defaults import LoggingConfig, simulate_logs_of

    if args.out.exists():
        raise ValueError(f"{args.out}: already exists; choose another path (nothing was overwritten)")
    config = load_yaml(args.config, LoggingConfig)
    world = _world(args)
    policies = [_policy(f"{args.config}: arms", p, world) for p in config.arms]
    events = simulate_logs_of(world, config, args.out, policies)
    positive = events[events["time"] > 0.8]
    per_track = positive["track"].value_counts()
    print(f"wrote {len(events)} events of {config.sessions} sessions ({events['user'].nunique()} users) to "
          f"{args.out}: {len(positive)} positives (time > 0.8), {int((per_track >= 5).sum())} tracks with >= 5")
    return 0


COMMANDS = {"world": world, "simulate": simulate, "logs": logs, "analyze": analyze, "abtest": abtest_command, "drive": drive}
