import pytest

from sim_bridge.contract.files import ConfigError, with_overrides

from model.config import ExperimentConfig, load_experiment_config, read_variants
from tests.model.conftest import REPO, TRAIN_YAML

VARIANTS_YAML = REPO / "configs" / "seed_variants.yaml"


def test_train_yaml_is_the_seeds_best():
    cfg = load_experiment_config(TRAIN_YAML)
    m, t = cfg.model, cfg.train
    assert (m.norm, m.dense_depth, m.hidden_dim, m.embedding_dim, m.margin) == ("layernorm", 2, 64, 96, 0.4)
    assert (t.weight_decay, t.min_delta, t.max_epochs, t.batch_size) == (1e-3, 0.001, 50, 2048)
    assert (t.lr_factor, t.lr_threshold, t.lr_threshold_mode) == (0.1, 0.002, "abs")
    row9 = load_experiment_config(TRAIN_YAML, "dense_block_emb64")  # row #9 differs in embedding, the search's
    assert cfg == with_overrides(row9, {"model.embedding_dim": 96, "model.sparse_bag": True,  # lazy bag and threads
                                        "train.num_threads": 0})


def test_nine_variants_from_the_seminar():
    base, variants = read_variants(VARIANTS_YAML)
    assert len(variants) == 9
    dssm = load_experiment_config(TRAIN_YAML, "dssm")
    # dataclass defaults = seminar, but for the bag (dense, as the seed trained it) and one thread
    assert dssm == with_overrides(ExperimentConfig(), {"features.pop_transform": "raw", "model.sparse_bag": False,
                                                       "train.num_threads": 1})
    assert load_experiment_config(TRAIN_YAML, "l2_normalize").model.norm == "l2"
    v6 = load_experiment_config(TRAIN_YAML, "min_delta_emb96")
    assert (v6.model.embedding_dim, v6.train.min_delta, v6.train.lr_patience) == (96, 0.001, 3)


@pytest.mark.parametrize("key", ["model.hidden_dim", "train.weight_decay", "train.min_delta", "model.dense_depth",
                                 "model.norm", "train.lr", "model.margin", "features.n_negatives",
                                 "features.positive_threshold", "features.history_len", "model.item_id_embedding"])
def test_search_keys_override(key):
    cfg = load_experiment_config(TRAIN_YAML)
    value = {"model.norm": "l2", "model.item_id_embedding": True, "features.positive_threshold": 0.5,
             "train.weight_decay": 0.01, "train.min_delta": 0.01, "train.lr": 0.01, "model.margin": 0.2}.get(key, 3)
    section, name = key.split(".")
    assert getattr(getattr(with_overrides(cfg, {key: value}), section), name) == value


@pytest.mark.parametrize("overrides,key", [
    ({"model.hidden_dim": -1}, "model.hidden_dim"),
    ({"model.embedding_dim": 0}, "model.embedding_dim"),
    ({"model.norm": "batchnorm"}, "model.norm"),
    ({"model.activation": "swishy"}, "model.activation"),
    ({"train.lr_threshold_mode": "pct"}, "train.lr_threshold_mode"),
    ({"features.n_negatives": 0}, "features.n_negatives"),
    ({"model.colour": 1}, "model.colour"),
    ({"train.batch_size": "big"}, "train.batch_size"),
])
def test_bad_overrides_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        with_overrides(load_experiment_config(TRAIN_YAML), overrides)


def test_bad_yaml_names_the_key(tmp_path):
    text = TRAIN_YAML.read_text().replace("norm: layernorm", "norm: nonsense")
    (tmp_path / "t.yaml").write_text(text)
    with pytest.raises(ConfigError, match="model.norm"):
        load_experiment_config(tmp_path / "t.yaml")
    (tmp_path / "u.yaml").write_text(TRAIN_YAML.read_text().replace("model:\n", "model:\n  depth: 3\n"))
    with pytest.raises(ConfigError, match="model.depth"):
        load_experiment_config(tmp_path / "u.yaml")


def test_unknown_variant_and_bad_variant_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown variant 'nope'"):
        load_experiment_config(TRAIN_YAML, "nope")
    (tmp_path / "seed_variants.yaml").write_text("seminar: {}\nvariants:\n  x:\n    model:\n      widht: 3\n")
    (tmp_path / "train.yaml").write_text(TRAIN_YAML.read_text())
    with pytest.raises(ConfigError, match="model.widht"):
        load_experiment_config(tmp_path / "train.yaml", "x")
