"""The work behind each ``python -m sim_bridge`` subcommand (argument parsing lives in cli.py)."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from sim_bridge import abtest
from sim_bridge import columns as C
from sim_bridge.atomic import check_output_file
from sim_bridge.defaults import ensure_default_world, use_world_config, world_config_path
from sim_bridge.experiment import simulate_experiment
from sim_bridge.policies import make_policy
from sim_bridge.simulator import SimConfig, Simulator
from sim_bridge.world import load_world, save_world
from sim_bridge.worldgen import build_world, load_world_config


def world(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out}: folder is not empty; choose a new folder (nothing was overwritten)")
    config = load_world_config(args.config or world_config_path())
    save_world(build_world(config), out)
    print(f"wrote {config.n_tracks} tracks and {config.n_users} users to {out}")
    return 0


def _simulator(args: argparse.Namespace) -> Simulator:
    if args.world is None:
        use_world_config(args.world_config)
    folder = args.world or ensure_default_world()
    return Simulator(load_world(folder), SimConfig(max_steps=args.max_steps))


def _parse_arms(spec: str) -> list[str]:
    """``C=sticky_artist,T1=random`` → policy specs in arm order C, T1, T2, ..."""
    arms = {}
    for part in spec.split(","):
        name, sep, policy = part.partition("=")
        if not sep or not policy:
            raise ValueError(f"--arms: expected NAME=POLICY, got '{part}'")
        arms[name.strip()] = policy.strip()
    expected = ["C"] + [f"T{k}" for k in range(1, len(arms))]
    if list(arms) != expected:
        raise ValueError(f"--arms: arms must be named {','.join(expected)} in that order, got {','.join(arms)}")
    return list(arms.values())


def simulate(args: argparse.Namespace) -> int:
    from sim_bridge.logging_run import result_events
    from sim_bridge.logs import write_logs

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
    if args.out is None:
        return
    if args.out.suffix not in TABLE_SUFFIXES:
        raise ValueError(f"--out {args.out}: unsupported suffix {args.out.suffix!r} (use .csv or .md)")
    check_output_file(args.out, args.force)


def _policy(flag: str, spec: str, world):
    """``make_policy`` with the flag named in its error."""
    try:
        return make_policy(spec, world)
    except ValueError as exc:
        raise ValueError(f"{flag}: {exc}") from None


def analyze(args: argparse.Namespace) -> int:
    from sim_bridge.logs import read_logs

    _check_table_out(args)
    events = read_logs(args.logs)
    from sim_bridge.logs import sessionize

    _check_srm(sessionize(events, args.experiment).query(f"{C.ARM} != ''"))
    _show(abtest.analyze(events, args.experiment), args.out)
    return 0


def abtest_command(args: argparse.Namespace) -> int:
    _check_table_out(args)
    sim = _simulator(args)
    control, treatment = _policy("--control", args.control, sim.world), _policy("--treatment", args.treatment, sim.world)
    result = simulate_experiment(sim, [control, treatment], args.experiment, args.sessions, args.seed)
    _check_srm(result.sessions)
    metrics = abtest.user_metrics(result.sessions)
    table = abtest.ab_table(metrics, model_names={"T1": args.treatment})
    print(f"control: {args.control}   treatment: {args.treatment}   sessions: {args.sessions}   "
          f"truncated: {100 * result.truncated_share:.2f}%")
    _show(table, args.out)
    return 0


TABLE_SUFFIXES = (".csv", ".md")


def _check_srm(sessions) -> None:
    """Warn (on stderr) when users split across arms unlike botify's equal assignment."""
    users = sessions.drop_duplicates(C.USER)
    counts = users[C.ARM].value_counts().sort_index()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chi2, p = abtest.srm_check(counts.to_dict())
    print(f"users per arm: {counts.to_dict()}  (sample-ratio χ² = {chi2:.2f}, p = {p:.3g})", file=sys.stderr)
    for warning in caught:
        print(f"WARNING: {warning.message}", file=sys.stderr)


def _show(table, out: Path | None) -> None:
    print(abtest.to_markdown(table))
    if out is not None:
        abtest.write_table(table, out)
        print(f"wrote {out}", file=sys.stderr)


def drive(args: argparse.Namespace) -> int:
    from sim_bridge.drive import DriveConfig, drive as drive_service

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
    from sim_bridge.atomic import atomic_path

    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            sessions.to_parquet(tmp, index=False)
        else:
            sessions.to_csv(tmp, index=False)


COMMANDS = {"world": world, "simulate": simulate, "analyze": analyze, "abtest": abtest_command, "drive": drive}
