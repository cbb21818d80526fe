"""Tiny hand-made worlds for the behaviour-rule tests (imported by the test modules)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from sim_bridge.contract import columns as C
from sim_bridge.contract.catalog import Catalog
from sim_bridge.world import Users, World

# Track embeddings (2-d) and artists. Track 0 is the user's only interest and its own nearest
# neighbour (⟨e0, e0⟩ = 9), so every session starts on track 0 with interest_neighbours = 1.
#   track: 0      1      2      3      4
#   e:     (3,0)  (2,0)  (1,0)  (1,0)  (1,0)    ⟨e, e0⟩ = 9, 6, 3, 3, 3
#   artist A      A      B      C      D
EMBEDDINGS = np.array([[3, 0], [2, 0], [1, 0], [1, 0], [1, 0]], dtype=np.float32)
ARTISTS = ["A", "A", "B", "C", "D"]


def tiny_world(bias: float = 0.0, sharpness: float = 1.0, gamma: float = 0.8, budget: int = 5) -> World:
    catalog = Catalog(pd.DataFrame({
        C.TRACK: np.arange(5), C.ARTIST: ARTISTS, C.TITLE: [f"t{i}" for i in range(5)],
        C.GENRE: ["g"] * 5, C.POP: [5, 4, 3, 2, 1],
    }))
    users = Users(
        user=np.array([42]), interests=np.array([[0]]), n_interests=np.array([1]),
        consume_bias=np.array([bias]), consume_sharpness=np.array([sharpness]),
        session_budget=np.array([budget]), artist_discount_gamma=np.array([gamma]),
        interest_neighbours=np.array([1]),
    )
    return World(catalog, EMBEDDINGS, users)


class Scripted:
    """Recommends ``script[k]`` at step k + 1 of every session."""

    name = "scripted"

    def __init__(self, script: list[int]):
        self.script = np.array(script)

    def recommend(self, batch, slots, u):
        return self.script[np.minimum(batch.step[slots], len(self.script) - 1)]
