"""No serving policy but the oracle reads hidden truth: the session's interest track, the user's
row in users.json, the embeddings or the listener parameters.

Each policy is built from a world whose hidden parts raise on access and serves, inside a real
simulation, a batch whose hidden fields raise on access.
"""
import numpy as np
import pytest

from sim_bridge.policy_specs import make_policy
from sim_bridge.contract.recs import write_item_recs, write_user_recs, write_top_tracks
from sim_bridge.simulator import Simulator

HIDDEN_BATCH = ("interest_track", "user_index")
HIDDEN_WORLD = ("embeddings", "users")


class HiddenRead(AssertionError):
    pass


class Guarded:
    """Delegates to ``inner`` but raises on the ``hidden`` attributes."""

    def __init__(self, inner, hidden):
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_hidden", hidden)

    def __getattr__(self, name):
        if name in self._hidden:
            raise HiddenRead(f"read hidden field '{name}'")
        return getattr(self._inner, name)


class GuardedServing:
    """Hands ``policy`` a guarded view of the batch at every step."""

    def __init__(self, policy):
        self.policy, self.name = policy, policy.name

    def recommend(self, batch, slots, u):
        return self.policy.recommend(Guarded(batch, HIDDEN_BATCH), slots, u)


@pytest.fixture(scope="module")
def specs(smoke_world, tmp_path_factory):
    folder = tmp_path_factory.mktemp("recs")
    rng = np.random.default_rng(0)
    n = smoke_world.catalog.n_tracks
    users = {int(u): rng.choice(n, 20, replace=False) for u in smoke_world.users.user[::2]}
    items = {t: rng.choice(n, 10, replace=False) for t in range(0, n, 3)}
    write_user_recs(users, folder / "users.json")
    write_item_recs(items, folder / "items.json")
    write_top_tracks(np.arange(100), folder / "top.json")
    return ["random", "sticky_artist", "sticky_artist_exclusive", f"toppop:{folder / 'top.json'}", "toppop_catalog",
            f"indexed:{folder / 'users.json'}", f"sequential:{folder / 'users.json'}",
            f"i2i:{folder / 'items.json'}", f"i2i:{folder / 'items.json'}:2.0:0",
            f"contextual:{folder / 'items.json'}", f"botify_i2i:{folder / 'items.json'}"]


def test_policies_serve_without_hidden_truth(smoke_world, specs):
    guarded_world = Guarded(smoke_world, HIDDEN_WORLD)
    sim = Simulator(smoke_world)
    for spec in specs:
        policy = make_policy(spec, guarded_world)
        result = sim.run(GuardedServing(policy), 300, seed=3)
        assert len(result.sessions) == 300, spec


def test_the_guard_catches_the_oracle(smoke_world):
    with pytest.raises(HiddenRead, match="embeddings|users"):
        make_policy("oracle", Guarded(smoke_world, HIDDEN_WORLD))
    oracle = make_policy("oracle", smoke_world)
    with pytest.raises(HiddenRead, match="interest_track"):
        Simulator(smoke_world).run(GuardedServing(oracle), 10, seed=3)
