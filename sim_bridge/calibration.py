"""The calibration check: baselines on a world, measured as the course measured them."""
from __future__ import annotations

import numpy as np

from sim_bridge import columns as C
from sim_bridge.abtest import user_metrics
from sim_bridge.policies import Random, StickyArtist, TopPop
from sim_bridge.simulator import Simulator
from sim_bridge.world import World

# The course's table on its real world (docs/seed.md): mean time per session.
TARGETS = {"random": 2.05, "sticky_artist": 2.99, "toppop": 2.12}


def measure_baselines(world: World, n_sessions: int, seed: int) -> dict[str, dict[str, float]]:
    """User-level mean time and tracks per session (± SE) of each baseline, paired sessions.

    TopPop serves the world's logged ``top_tracks`` when it has them (botify's rule), else the
    catalog's pop (reported as ``toppop_catalog``)."""
    sim = Simulator(world)
    policies = [Random(world.catalog.n_tracks), StickyArtist(world.catalog), TopPop(world.catalog, top=world.top_tracks)]
    out = {}
    for policy in policies:
        users = user_metrics(sim.run(policy, n_sessions, seed).sessions)
        time, tracks = users[C.MEAN_TIME_PER_SESSION], users[C.MEAN_TRACKS_PER_SESSION]
        out[policy.name] = {
            "time": float(time.mean()),
            "time_se": float(time.std(ddof=1) / np.sqrt(len(time))),
            "tracks": float(tracks.mean()),
            "tracks_se": float(tracks.std(ddof=1) / np.sqrt(len(tracks))),
            "off_pct": float(100 * (time.mean() / TARGETS[policy.name.removesuffix("_catalog")] - 1)),
        }
    return out
