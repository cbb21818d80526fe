import pytest
import torch

from sim_bridge.contract.files import with_overrides

from model.config import load_experiment_config
from model.dssm import DSSM, DSSMConfig, build_model, count_parameters
from model.train import _Batches
from tests.model.conftest import TRAIN_YAML


def test_tower_shapes(data, tiny_cfg):
    model = build_model(tiny_cfg.model, data)
    hist = torch.as_tensor(data.history[:5], dtype=torch.int64)
    assert model.user_tower(hist).shape == (5, 8)
    assert model.item_tower(torch.arange(7)).shape == (7, 8)
    loss = model(hist, torch.arange(5), torch.arange(5, 10))
    assert loss.shape == () and loss.item() >= 0


@pytest.mark.parametrize("norm", ["none", "layernorm", "l2"])
def test_norms(data, tiny_cfg, norm):
    model = build_model(with_overrides(tiny_cfg, {"model.norm": norm}).model, data)
    out = model.item_tower(torch.arange(10))
    if norm == "l2":
        assert torch.allclose(out.norm(dim=1), torch.ones(10), atol=1e-5)
    elif norm == "layernorm":
        assert torch.allclose(out.mean(dim=1), torch.zeros(10), atol=1e-5)
    else:
        assert not torch.allclose(out.norm(dim=1), torch.ones(10), atol=1e-2)


def test_grouped_loss_equals_masked_reference(data, tiny_cfg):
    """The fast path (bag once per unique user, own pos/neg subtracted) ≡ the plain masked bag."""
    torch.manual_seed(0)
    model = build_model(with_overrides(tiny_cfg, {"model.item_id_embedding": True}).model, data)
    b = _Batches(data, torch.device("cpu"))
    trip = b.split(data.train[:500])
    # the own positive / negative sit in the history for some triplets: the subtraction is exercised
    own_pos = (b.history[trip[:, 0]] == b.track1[trip[:, 1]][:, None]).any(1)
    own_neg = (b.history[trip[:, 0]] == b.track1[trip[:, 2]][:, None]).any(1)
    assert own_pos.sum() > 10 and own_neg.any()
    fast = model.grouped_loss(*b.batch(trip))
    ref = model(*b.reference_batch(trip))
    assert torch.allclose(fast, ref, atol=1e-6)


def test_dense_depth_bottleneck_widths():
    cfg = DSSMConfig(embedding_dim=96, hidden_dim=64, dense_depth=3)
    model = DSSM(cfg, n_tracks=10, n_items=4, n_genres=3)
    widths = [m.out_features for m in model.user_tower.dense if isinstance(m, torch.nn.Linear)]
    assert widths == [48, 48, 96]


def _count(n_tracks: int, n_genres: int, d: int, h: int) -> int:
    """Seed's best (LayerNorm, depth-2 bottleneck) parameter count written as arithmetic."""
    half = d // 2
    block = lambda i: (i * half + half) + (half * d + d)  # noqa: E731
    user = (n_tracks + 1) * d + block(d) + (2 * d * d + d) + 2 * d
    item = n_genres * h + block(1 + h) + ((h + d) * d + d) + 2 * d
    return user + item


def test_param_count_seed_best_at_50000_tracks():
    cfg = load_experiment_config(TRAIN_YAML)
    g = 20
    # row #9 (embedding 64)
    emb64 = with_overrides(cfg, {"model.embedding_dim": 64}).model
    assert count_parameters(DSSM(emb64, 50_000, 50_000, g)) == _count(50_000, g, 64, 64)
    # as configured: docs/seed.md's "about 4.9M" at embedding 96, mostly the 50,001 x 96 bag
    n = count_parameters(DSSM(cfg.model, 50_000, 50_000, g))
    assert n == _count(50_000, g, 96, 64)
    assert 4.8e6 < n < 4.95e6 and 50_001 * 96 / n > 0.95


def test_artist_embedding_ties_items_of_one_artist(data):
    """With ``model.artist_embedding`` the item tower reads each item's artist (public catalog):
    the artist buffer holds the codes, and two items differing only in artist embed differently."""
    cfg = with_overrides(load_experiment_config(TRAIN_YAML), {"model.artist_embedding": True}).model
    model = build_model(cfg, data)
    assert torch.equal(model.item_tower.artist, torch.as_tensor(data.item_artist))
    assert model.item_tower.artist_emb.num_embeddings == data.n_artists
    assert any(p is model.item_tower.artist_emb.weight for p in model.sparse_parameters())
    tower = model.item_tower
    with torch.no_grad():
        tower.genres[1], tower.pop[1] = tower.genres[0], tower.pop[0]
    tower.artist[1] = (tower.artist[0] + 1) % data.n_artists
    out = tower(torch.tensor([0, 1]))
    assert not torch.allclose(out[0], out[1])
    tower.artist[1] = tower.artist[0]
    out = tower(torch.tensor([0, 1]))
    # equal up to float32 rounding: rows of one batched matmul may take different kernel paths
    torch.testing.assert_close(out[0], out[1], rtol=1e-5, atol=1e-5)


def test_pair_loss_is_the_time_weighted_item_triplet_loss(data, tiny_cfg):
    torch.manual_seed(0)
    model = build_model(tiny_cfg.model, data).eval()
    first, later, neg = torch.tensor([0, 1, 2, 0]), torch.tensor([3, 4, 5, 3]), torch.tensor([6, 7, 8, 9])
    weight = torch.tensor([1.0, 0.5, 0.0, 0.25])
    with torch.no_grad():
        a, p, n = model.item_tower(first), model.item_tower(later), model.item_tower(neg)
        per_pair = torch.clamp(torch.norm(a - p, dim=1) - torch.norm(a - n, dim=1) + tiny_cfg.model.margin, min=0)
        expected = (per_pair * weight).sum() / weight.sum()
        got = model.pair_loss(first, later, neg, weight)
    assert torch.allclose(got, expected, atol=1e-6)
    # a zero weight drops its pair: changing that pair's negative changes nothing
    with torch.no_grad():
        assert torch.allclose(model.pair_loss(first, later, torch.tensor([6, 7, 1, 9]), weight), got, atol=1e-6)
