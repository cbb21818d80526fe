"""The lift the logs allow, on a panel of training logs: the card's search and its confirmation on each.

    .venv/bin/python benchmarks/world_panel.py [--minutes 12] [--rows default,public,hidden]
                                               [--out runs/panel] [--smoke]

One world (the built-in world's hidden truth), several training logs; each row is a feedback loop
(``search.loop``, in ``OUT/<row>``) whose round 1 is the card's search on those logs, budgeted to
``--minutes`` and confirmed on fresh sessions (``search.confirm``'s sizes); its later rounds search
again after a logging A/B in which the round's winner took arms beside the public baselines:

  default   World v4, the built-in world: public arms at the seed's volume, then the loop (2 rounds:
            round 2 searches them after one logging turn of the world's 450,000 sessions)
  public    public arms, 60,000 sessions (configs/world_public_small.yaml), then the loop (3 rounds:
            round r searches the logs after r - 1 logging turns of 240,000 sessions each)
  hidden    World v3: hidden-list logs, three of six arms read the hidden embeddings (1 round)

Beside each round, the world's ceiling through the same serving rules: our i2i rule, with the
round winner's like threshold and artist skip, over the 200 nearest tracks by cosine of the
simulator's hidden embeddings (``i2i_hidden``), in a fresh A/B of the same size as the
confirmation. A rerun continues each loop where it stopped (finished rounds are read, not redone).
Writes ``OUT/panel.md`` and ``OUT/panel.json``; last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim_bridge.contract import columns as C  # noqa: E402
from sim_bridge.contract.files import atomic_write_text  # noqa: E402

from search.config import parse_benchmark_args  # noqa: E402
from search.formatting import lift_text  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CEILING_SEED = 919_000  # the ceiling A/Bs' seed: never a confirmation's (909_000 + k) or a search's


@dataclass(frozen=True)
class Row:
    name: str
    logs: str           # what the table says of the logs round 1 searches
    world_config: str   # relative to the repository
    rounds: int
    round_sessions: int | None = None   # each logging turn's sessions (None: the world's logging run's)


ROWS = {row.name: row for row in (
    Row("default", "World v4 (built-in): public arms at the seed's volume, 450,000 sessions", "configs/world.yaml", 2),
    Row("public", "public arms, 60,000 sessions, then the feedback loop (240,000 sessions a turn)",
        "configs/world_public_small.yaml", 3, round_sessions=240_000),
    Row("hidden", "World v3: hidden-list logs (3 of 6 arms contextual_hidden:100)", "configs/world_v3.yaml", 1),
)}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=12.0, help="each round's search budget")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    p.add_argument("--rounds", type=int, default=None, help="cap every row's rounds (default: the row's)")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "panel")
    p.add_argument("--smoke", action="store_true", help="every row on the tiny world, configs/smoke.yaml's sizes")
    args = parse_benchmark_args(p, "world_panel", argv)
    args.rows = [name.strip() for name in args.rows.split(",") if name.strip()]
    unknown = [name for name in args.rows if name not in ROWS]
    if unknown or not args.rows:
        p.error(f"--rows: expected names among {', '.join(ROWS)}, got {unknown or 'none'}")
    return args


def loop_argv(args, row: Row) -> list[str]:
    rounds = min(row.rounds, args.rounds) if args.rounds else row.rounds
    argv = ["--rounds", str(rounds), "--out", str(args.out / row.name), "--time-budget-s", str(args.minutes * 60)]
    if args.smoke:
        return argv + ["--smoke-test"]
    argv += ["--round-sessions", str(row.round_sessions)] if row.round_sessions else []
    return argv + ["--world-config", str(REPO / row.world_config)]


def run_row(args, row: Row) -> list[dict]:
    """The row's loop (run or continued) → its rounds, each with the ceiling beside it."""
    from search import loop

    argv = loop_argv(args, row)
    print(f"panel: {row.name}: python -m search.loop {' '.join(argv)}", flush=True)
    if loop.main(argv) != 0:
        raise SystemExit(f"panel: row {row.name}: search.loop failed (its message is above); rerun to continue")
    folder = args.out / row.name
    state = json.loads((folder / loop.STATE_FILE).read_text())["rounds"]
    rows = []
    for r in json.loads((folder / loop.TABLE_JSON).read_text())["rounds"]:
        done = state[str(r["round"])]
        label = f"smoke world ({row.name})" if args.smoke else row.logs
        rows.append({"row": row.name, "logs_label": label, **r, "trials_ended": done["search"]["trials_ended"],
                     **ceiling(Path(done["search"]["experiment"]), done["export"]["serving"], r["confirm_sessions"])})
    return rows


_CEILINGS: dict[tuple, dict] = {}


def ceiling(exp: Path, serving: dict, sessions: int) -> dict:
    """The hidden-truth lists served by the winner's rules: a fresh A/B vs sticky_artist (one per
    world, rules and size: the same experiment name and seed for every row, so equal rules give
    the same figure)."""
    from sim_bridge.abtest import unpaired_ab
    from sim_bridge.policy_specs import make_policy
    from sim_bridge.world import load_world

    from search import experiment

    world_dir = experiment.read_run_file(exp)["world"]
    spec = f"i2i_hidden:200:{serving['like_threshold']!r}:{serving['skip_artists']}"
    key = (world_dir, spec, sessions)
    if key not in _CEILINGS:
        world = load_world(world_dir)
        table = unpaired_ab(world, make_policy(spec, world), "ceiling", sessions, CEILING_SEED, spec)
        lift = table[table["metric"] == C.MEAN_TIME_PER_SESSION].iloc[0]
        _CEILINGS[key] = {"ceiling": spec, "ceiling_lift": float(lift["effect"]),
                          "ceiling_lower": float(lift["lower"]), "ceiling_upper": float(lift["upper"])}
    return _CEILINGS[key]


def markdown(rows: list[dict], minutes: float) -> str:
    lines = ["# The lift the logs allow", "",
             f"Each round: the card's search (`search.run --num-samples 50`, {minutes:g}-minute budget) on the "
             "round's logs, its winner confirmed on fresh sessions vs sticky_artist; beside it the ceiling, "
             "the hidden embeddings' nearest tracks served by the winner's rules.", "",
             "| logs | round | events | trials | best paired | confirmed [95% CI] | ceiling [95% CI] | wall time |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['logs_label']} | {r['round']} | {r['events']:,} | {r.get('trials_ended', '')} "
                     f"| {r['best_lift']:+.1f}% "
                     f"| {lift_text(r['confirmed_lift'], r['confirmed_lower'], r['confirmed_upper'])} "
                     f"| {lift_text(r['ceiling_lift'], r['ceiling_lower'], r['ceiling_upper'])} "
                     f"| {r['wall_s'] / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [r for name in args.rows for r in run_row(args, ROWS[name])]
    atomic_write_text(args.out / "panel.json", json.dumps({"minutes": args.minutes, "rows": rows}, indent=2) + "\n")
    text = markdown(rows, args.minutes)
    atomic_write_text(args.out / "panel.md", text)
    print(text, flush=True)
    print(json.dumps({"rows": [{k: r[k] for k in ("row", "round", "events", "best_lift", "confirmed_lift",
                                                  "confirmed_lower", "confirmed_upper", "ceiling_lift")}
                               for r in rows]}))


if __name__ == "__main__":
    main()
