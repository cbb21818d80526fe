"""``python -m sim_bridge``: world, simulate, analyze, abtest, drive."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


EXAMPLES = """examples:
  python -m sim_bridge world --out world/
  python -m sim_bridge simulate --experiment EXP --arms C=sticky_artist,T1=random --sessions 20000 --seed 1 --out logs.parquet
  python -m sim_bridge analyze --logs logs.parquet --experiment EXP
  python -m sim_bridge abtest --control sticky_artist --treatment indexed:recs.json --sessions 8000 --seed 1
  python -m sim_bridge drive --url http://127.0.0.1:5001 --sessions 5000 --concurrency 8 --seed 1
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sim_bridge", description=__doc__, epilog=EXAMPLES,
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
    from sim_bridge import commands

    try:
        return commands.COMMANDS[args.command](args)
    except (ValueError, OSError, KeyError) as exc:  # our errors are ValueErrors naming file/line/field
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
