import math

import numpy as np
import pytest
import torch

from sim_bridge.contract.files import with_overrides

from model.config import load_experiment_config, read_variants
from model.infer import recommend
from model.lazy_adam import LazyAdam
from model.config import TrainConfig
from model.train import (STOP_CALLBACK, STOP_EARLY, STOP_MAX_EPOCHS, EarlyStopping, grouped_permutation, lr_schedulers,
                         positive_runs, train)
from tests.model.conftest import REPO, TRAIN_YAML

VARIANTS = list(read_variants(REPO / "configs" / "seed_variants.yaml")[1])


def test_early_stopping_min_delta():
    # min_delta 0.001: 0.9995 is not an improvement over 1.0, 0.998 is
    es = EarlyStopping(patience=2, min_delta=0.001)
    assert [es.step(x) for x in [1.0, 0.9995, 0.998, 0.9975, 0.9972]] == [False, False, False, False, True]
    assert es.best == 0.998
    # min_delta 0: any decrease counts
    es0 = EarlyStopping(patience=2, min_delta=0.0)
    assert [es0.step(x) for x in [1.0, 0.9995, 0.999, 0.999, 0.999]] == [False, False, False, False, True]


def _lrs(losses, **train_cfg) -> list[float]:
    """The LR after each epoch's loss, for a dense and a sparse optimiser under ``lr_schedulers``."""
    tc = TrainConfig(**train_cfg)
    opts = [torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=tc.lr),
            LazyAdam([torch.zeros(1, requires_grad=True)], lr=tc.lr)]
    scheds = lr_schedulers(opts, tc)
    out = []
    for x in losses:
        for sched in scheds:
            sched.step(x)
        assert opts[0].param_groups[0]["lr"] == opts[1].param_groups[0]["lr"]  # one LR for both
        out.append(opts[0].param_groups[0]["lr"])
    return out


def test_plateau_abs_threshold_patience_0():
    # the seed's "better scheduler": x0.1 as soon as an epoch improves the best by < 0.002
    lrs = _lrs([1.0, 0.997, 0.9955, 0.990, 0.9895], lr=1e-3, lr_factor=0.1, lr_patience=0, lr_threshold=0.002,
               lr_threshold_mode="abs")
    assert np.allclose(lrs, [1e-3, 1e-3, 1e-4, 1e-4, 1e-5])


def test_plateau_rel_threshold():
    # best 1.0 → needs < 0.99; 0.995 and 0.992 are bad → 2 bad epochs > patience 1 → halve
    lrs = _lrs([1.0, 0.995, 0.992, 0.5], lr=1.0, lr_factor=0.5, lr_patience=1, lr_threshold=0.01,
               lr_threshold_mode="rel")
    assert lrs == [1.0, 1.0, 0.5, 0.5]


def test_grouped_permutation_keeps_runs_together():
    trip = torch.tensor([[0, 1, 5], [0, 1, 6], [0, 2, 3], [1, 2, 4], [1, 2, 0], [1, 2, 7]])
    runs = positive_runs(trip)
    assert runs[0].tolist() == [0, 2, 3] and runs[1].tolist() == [2, 1, 3]
    perm = grouped_permutation(*runs, torch.Generator().manual_seed(3))
    assert sorted(perm.tolist()) == list(range(6))
    order = trip[perm, :2].tolist()
    # each (user, positive) appears as one contiguous block
    blocks = [order[0]] + [b for a, b in zip(order, order[1:]) if a != b]
    assert len(blocks) == 3


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_seed_variant_trains_one_epoch(variant, data):
    cfg = load_experiment_config(TRAIN_YAML, variant)
    cfg = with_overrides(cfg, {"train.max_epochs": 1, "train.num_threads": 1, "model.embedding_dim":
                               cfg.model.embedding_dim // 8, "model.hidden_dim": 8})
    seen = []
    res = train(cfg, data, on_epoch=seen.append, device="cpu")
    assert res.epochs == 1 and len(seen) == 1 and set(seen[0]) == {"epoch", "train_loss", "val_loss", "lr", "seconds"}
    assert math.isfinite(res.best_val_loss) and res.best_val_loss == seen[0]["val_loss"]


def test_training_lowers_val_loss_and_restores_best(data, tiny_cfg):
    cfg = with_overrides(tiny_cfg, {"train.max_epochs": 6, "train.lr": 1e-2, "train.patience": 10})
    res = train(cfg, data, device="cpu")
    vals = [h["val_loss"] for h in res.history]
    assert vals[-1] < vals[0]
    assert res.best_val_loss == min(vals) and res.best_epoch == int(np.argmin(vals)) + 1
    from model.train import _Batches, evaluate
    b = _Batches(data, torch.device("cpu"))
    assert math.isclose(evaluate(res.model, b, b.split(data.val), 10_000), res.best_val_loss, rel_tol=1e-5)


def test_early_stop_on_plateau(data, tiny_cfg):
    # lr so small nothing improves by min_delta 0.5 → stop after `patience` epochs
    cfg = with_overrides(tiny_cfg, {"train.max_epochs": 20, "train.patience": 2, "train.min_delta": 0.5})
    res = train(cfg, data, device="cpu")
    assert res.epochs == 3 and res.stopped_early and res.stop_reason == STOP_EARLY == "early_stopping"


def test_stop_reason_max_epochs_when_it_runs_out(data, tiny_cfg):
    cfg = with_overrides(tiny_cfg, {"train.max_epochs": 2, "train.patience": 10, "train.min_delta": 0.0})
    res = train(cfg, data, device="cpu")
    assert res.epochs == 2 and res.stop_reason == STOP_MAX_EPOCHS == "max_epochs" and not res.stopped_early
    # a large min_delta makes every epoch after the first a bad one; patience 1 stops at epoch 2,
    # which is also the last: nothing was cut short, so the reason is max_epochs
    cfg = with_overrides(tiny_cfg, {"train.max_epochs": 2, "train.patience": 1, "train.min_delta": 0.5})
    assert train(cfg, data, device="cpu").stop_reason == "max_epochs"


def test_an_after_epoch_reason_ends_training_and_is_recorded(data, tiny_cfg):
    cfg = with_overrides(tiny_cfg, {"train.max_epochs": 5, "train.patience": 10})
    seen = []

    def plateau_at_2(row, model):
        seen.append(row["epoch"])
        return "rung_plateau" if row["epoch"] == 2 else None

    res = train(cfg, data, device="cpu", after_epoch=plateau_at_2)
    assert seen == [1, 2] and res.epochs == 2 and res.stop_reason == "rung_plateau" and res.stopped_early
    res = train(cfg, data, device="cpu", after_epoch=lambda row, model: row["epoch"] == 3)  # a bare True
    assert res.epochs == 3 and res.stop_reason == STOP_CALLBACK


def test_early_stopping_is_consulted_alongside_an_after_epoch_callback(data, tiny_cfg):
    # the callback (the search's rungs) never says stop; val-loss early stopping still ends training
    cfg = with_overrides(tiny_cfg, {"train.max_epochs": 20, "train.patience": 2, "train.min_delta": 0.5})
    calls = []
    res = train(cfg, data, device="cpu", after_epoch=lambda row, model: calls.append(row["epoch"]))
    assert calls == [1, 2, 3] and res.epochs == 3 and res.stop_reason == "early_stopping"


def test_same_seed_same_recs_other_seed_differs(data, tiny_cfg):
    def run(seed):
        cfg = with_overrides(tiny_cfg, {"train.seed": seed, "train.max_epochs": 2})
        return recommend(train(cfg, data, device="cpu").model, data, k=10, device="cpu")
    a, b, c = run(0), run(0), run(1)
    assert a.keys() == b.keys() and all(np.array_equal(a[u], b[u]) for u in a)
    assert any(not np.array_equal(a[u], c[u]) for u in a)


def test_callback_exception_propagates(data, tiny_cfg):
    def stop(row):
        raise KeyboardInterrupt("trial stopped")
    with pytest.raises(KeyboardInterrupt, match="trial stopped"):
        train(tiny_cfg, data, on_epoch=stop, device="cpu")


def test_nan_loss_raises(data, tiny_cfg):
    cfg = with_overrides(tiny_cfg, {"train.lr": 1e30, "model.norm": "none", "train.max_epochs": 5})
    bad = type(data)(**{**data.__dict__, "item_pop": np.full_like(data.item_pop, np.nan)})
    with pytest.raises(FloatingPointError):
        train(cfg, bad, device="cpu")


def test_artist_embedding_variant_trains_and_round_trips(tmp_path, data, tiny_cfg):
    from model.checkpoint import data_maps, load_checkpoint, save_checkpoint
    from model.infer import recommend

    cfg = with_overrides(tiny_cfg, {"model.artist_embedding": True, "model.item_id_embedding": True})
    result = train(cfg, data, device="cpu")
    save_checkpoint(tmp_path / "c.pt", result.model, cfg, data_maps(data))
    model, _, _ = load_checkpoint(tmp_path / "c.pt")
    a, b = recommend(result.model, data, k=5, device="cpu"), recommend(model, data, k=5, device="cpu")
    assert a.keys() == b.keys() and all((a[u] == b[u]).all() for u in a)


@pytest.mark.parametrize("sparse_bag", [False, True])
def test_only_dense_adam_moves_bag_rows_a_batch_does_not_touch(data, tiny_cfg, sparse_bag):
    """The seed table trains the bag densely: Adam's momentum and weight decay reach every row.
    The sparse bag is lazy Adam: a row no batch touches keeps its value."""
    from model.dssm import build_model
    from model.train import _optimizers

    cfg = with_overrides(tiny_cfg, {"model.sparse_bag": sparse_bag, "train.weight_decay": 1e-3})
    torch.manual_seed(0)
    model = build_model(cfg.model, data)
    opts = _optimizers(model, cfg.train)
    bag = model.user_tower.bag.weight
    for rows in ([[1, 2]], [[3, 4]]):  # step 2 touches rows 3 and 4 only
        loss = model(torch.tensor(rows), torch.tensor([0]), torch.tensor([5]))
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        before = bag.detach().clone()
        for opt in opts:
            opt.step()
    moved = (bag.detach() != before).any(dim=1)
    assert moved[3] and moved[4]
    assert bool(moved[1]) is not sparse_bag and bool(moved[7]) is not sparse_bag  # row 7: never touched



def _planted_pairs_data(data, n_groups: int = 4):
    """``data`` with session pairs inside fixed groups of items (item index mod n_groups)."""
    import dataclasses
    rng = np.random.default_rng(3)
    first = rng.integers(0, data.n_items, 4000)
    later = (first + n_groups * rng.integers(1, data.n_items // n_groups, 4000)) % data.n_items
    later -= (later - first) % n_groups  # same group as first
    ok = (later >= 0) & (later < data.n_items) & (later != first)
    pairs = np.stack([first[ok], later[ok]], axis=1).astype(np.int32)
    return dataclasses.replace(data, pairs=pairs, pair_time=np.ones(len(pairs), np.float32))


@pytest.mark.parametrize("negatives", ["marginal", "uniform"])
def test_session_pairs_pull_paired_items_together(data, tiny_cfg, negatives):
    from model.infer import item_embeddings
    planted = _planted_pairs_data(data)
    cfg = with_overrides(tiny_cfg, {"model.item_id_embedding": True, "model.norm": "l2", "train.max_epochs": 8,
                                    "train.lr": 0.01, "train.batch_size": 64, "train.lr_patience": 100,
                                    "train.pair_negatives": negatives})

    def group_gap(d, pair_weight):
        result = train(with_overrides(cfg, {"train.pair_weight": pair_weight}), d, device="cpu")
        emb = item_embeddings(result.model, d, device="cpu")
        group = np.arange(d.n_items) % 4
        dist = np.linalg.norm(emb[:, None] - emb[None], axis=2)
        same = group[:, None] == group[None]
        np.fill_diagonal(same, False)
        return result, dist[~same].mean() - dist[same].mean()

    with_pairs, gap = group_gap(planted, 10.0)  # 4,000 pairs on 36 items: outweigh the user loss
    without, gap0 = group_gap(planted, 0.0)  # weight 0: the pairs are ignored
    assert all("pair_loss" in row for row in with_pairs.history)
    assert with_pairs.history[-1]["pair_loss"] < with_pairs.history[0]["pair_loss"]
    assert "pair_loss" not in without.history[0]
    assert gap > 0.1 and gap > 5 * abs(gap0)


def test_cooccurrence_vectors_feed_the_item_tower_and_round_trip(tmp_path, events, catalog, tiny_cfg):
    from model.checkpoint import data_maps, load_checkpoint, save_checkpoint
    from model.features import build_training_data
    from model.infer import item_embeddings

    cfg = with_overrides(tiny_cfg, {"features.cooc_dim": 4})
    data = build_training_data(events, catalog, cfg.features)
    assert data.item_cooc.shape == (data.n_items, 4)
    result = train(cfg, data, device="cpu")
    assert result.model.dims["n_cooc"] == 4
    save_checkpoint(tmp_path / "c.pt", result.model, cfg, data_maps(data))
    model, _, _ = load_checkpoint(tmp_path / "c.pt")
    assert np.array_equal(item_embeddings(model, data, device="cpu"), item_embeddings(result.model, data, device="cpu"))
    # the vectors are an input: other vectors, other item embeddings
    model.item_tower.cooc.mul_(-1)
    assert not np.allclose(item_embeddings(model, data, device="cpu"), item_embeddings(result.model, data, device="cpu"))
