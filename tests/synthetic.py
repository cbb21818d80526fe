"""Synthetic botify-like logs and a catalog for tests and benchmarks (seeded, vectorised).

Not the simulator and no hidden truth: a toy generator so model code can be exercised without
``python -m sim_bridge simulate``. Each user likes one genre; a played track from that genre
gets a high listened fraction, others a low one — enough signal for the DSSM to learn.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from sim_bridge.contract import columns as C
from sim_bridge.contract.catalog import Catalog


def synthetic_catalog(n_tracks: int, n_genres: int = 8, n_artists: int | None = None, seed: int = 0) -> Catalog:
    """Tracks 0..N-1 with power-law popularity, a genre each (a few missing) and an artist."""
    rng = np.random.default_rng([seed, 10])
    n_artists = n_artists or max(1, n_tracks // 10)
    genre = np.array([f"g{g}" for g in range(n_genres)], dtype=object)[rng.integers(0, n_genres, n_tracks)]
    genre[rng.random(n_tracks) < 0.02] = None
    frame = pd.DataFrame({
        C.TRACK: np.arange(n_tracks),
        C.ARTIST: [f"a{a}" for a in rng.integers(0, n_artists, n_tracks)],
        C.TITLE: [f"t{t}" for t in range(n_tracks)],
        C.GENRE: genre,
        C.POP: np.floor(rng.pareto(1.2, n_tracks) * 100).astype(np.int64) + 1,
    })
    return Catalog(frame)


def synthetic_events(catalog: Catalog, n_users: int, n_events: int, seed: int = 0) -> pd.DataFrame:
    """Events with user, track, time, timestamp (+ message): pop-weighted plays, genre taste."""
    rng = np.random.default_rng([seed, 11])
    genres = catalog.tracks[C.GENRE].astype(object).to_numpy()
    codes, names = pd.factorize(genres)  # missing genre → -1
    like = rng.integers(0, max(1, len(names)), n_users)
    user = rng.integers(0, n_users, n_events)
    p = catalog.pop / catalog.pop.sum()
    # half the plays come from the user's genre, half from the whole catalog
    by_genre = [np.flatnonzero(codes == g) for g in range(len(names))]
    track = rng.choice(catalog.n_tracks, size=n_events, p=p)
    own = rng.random(n_events) < 0.5
    for g, members in enumerate(by_genre):
        sel = own & (like[user] == g)
        if len(members) and sel.any():
            w = p[members] / p[members].sum()
            track[sel] = rng.choice(members, size=int(sel.sum()), p=w)
    match = codes[track] == like[user]
    time = np.where(match, rng.uniform(0.6, 1.0, n_events), rng.uniform(0.0, 0.9, n_events)).round(2)
    return pd.DataFrame({
        C.MESSAGE: C.MESSAGE_NEXT,
        C.TIMESTAMP: np.sort(rng.integers(0, 10**9, n_events)),
        C.USER: user.astype(np.int64),
        C.TRACK: track.astype(np.int64),
        C.TIME: time,
    })
