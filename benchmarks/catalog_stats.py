"""The public catalog's statistics, beside the course's (docs/worlds.md, "World v3").

    python benchmarks/catalog_stats.py [--world-config configs/world.yaml] [--smoke]

Generates the world (a few seconds at 50,000 tracks), writes it to a temporary folder, reads
``tracks.json`` back and prints one line per statistic: generated, then the course's (measured on
a 1,425-track sample of its 50,000). Last printed line: one JSON object with the shares.
``--smoke``: the same world scaled down 10× (5,000 tracks), for CI.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sim_bridge.world import load_world, save_world  # noqa: E402
from sim_bridge.worldgen import build_world, load_world_config  # noqa: E402

from search.config import parse_benchmark_args  # noqa: E402

SMOKE_SIZE = {"n_tracks": 5_000, "n_artists": 1_150, "n_users": 1_000, "dim": 32}

COURSE = {
    "genre: 1 id / 2 ids / 3+ ids": "87.0% / 11.6% / 1.3%",
    "genre: [1] alone / id 1 anywhere": "44.9% / 51.3%",
    "genre: most common ids besides 1": "10 13.5%, 6 8.1%, 149 6.5%, 2 5.6%, then 47, 36, 53",
    "genre: distinct ids, largest": "91, ~154",
    "pop: mean, sd": "-0.45, 0.70",
    "pop: min, p10, median, p90, p99, max": "-1.40, -1.06, -0.63, +0.32, +2.37, +4.32",
    "duration: median, min, max": "205, 48, 836",
}


def stats(catalog) -> dict[str, str]:
    genres = catalog.genres
    lengths = np.array([len(g) for g in genres])
    ids = collections.Counter(i for g in genres for i in g)
    n = len(genres)
    top = ", ".join(f"{i} {c / n:.1%}" for i, c in ids.most_common(8)[1:])
    pop = catalog.pop
    d = catalog.tracks["duration"].to_numpy(dtype=float)
    return {
        "genre: 1 id / 2 ids / 3+ ids": " / ".join(f"{x:.1%}" for x in ((lengths == 1).mean(), (lengths == 2).mean(),
                                                                         (lengths >= 3).mean())),
        "genre: [1] alone / id 1 anywhere": f"{np.mean([g == (1,) for g in genres]):.1%} / {ids[1] / n:.1%}",
        "genre: most common ids besides 1": top,
        "genre: distinct ids, largest": f"{len(ids)}, {max(ids)}",
        "pop: mean, sd": f"{pop.mean():.2f}, {pop.std():.2f}",
        "pop: min, p10, median, p90, p99, max": ", ".join(f"{x:+.2f}" for x in (pop.min(), *np.quantile(pop, [.1, .5, .9, .99]),
                                                                                pop.max())),
        "duration: median, min, max": f"{np.median(d):.0f}, {d.min():.0f}, {d.max():.0f}",
    }


def shares(catalog) -> dict[str, float]:
    """The genre and pop figures as numbers (the JSON line)."""
    genres = catalog.genres
    lengths = np.array([len(g) for g in genres])
    return {"one_id": float((lengths == 1).mean()), "two_ids": float((lengths == 2).mean()),
            "three_plus": float((lengths >= 3).mean()), "alone_1": float(np.mean([g == (1,) for g in genres])),
            "has_1": float(np.mean([1 in g for g in genres])), "distinct_ids": len({i for g in genres for i in g}),
            "pop_mean": float(catalog.pop.mean()), "pop_sd": float(catalog.pop.std()),
            "pop_median": float(np.median(catalog.pop))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world-config", type=Path, default=REPO / "configs" / "world.yaml")
    p.add_argument("--smoke", action="store_true", help="the world scaled down 10x")
    args = parse_benchmark_args(p, "catalog_stats", argv)
    cfg = load_world_config(args.world_config)
    if args.smoke:
        cfg = dataclasses.replace(cfg, **SMOKE_SIZE)
    with tempfile.TemporaryDirectory(prefix="catalog-") as tmp:
        save_world(build_world(cfg), tmp)
        catalog = load_world(tmp).catalog
    print(f"{args.world_config} ({cfg.generator}, seed {cfg.seed}, {catalog.n_tracks} tracks, "
          f"{catalog.tracks['artist'].nunique()} artists, {catalog.tracks['album'].nunique()} albums)")
    print("| statistic | generated | course |\n|---|---|---|")
    for key, value in stats(catalog).items():
        print(f"| {key} | {value} | {COURSE[key]} |")
    print(json.dumps({"tracks": catalog.n_tracks, **shares(catalog)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
