"""search.seed_table --smoke on two variants: the CSV in the seed's columns, the Markdown beside
the seed's published numbers (docs/seed.md), the overwrite guard and clean errors; --pool's
averages over trainings and the rank correlation with the seed's rows."""
import shutil

import numpy as np
import pandas as pd
import pytest

from model.config import read_variants
from search.seed_table import SEED_PUBLISHED, VARIANTS_FILE, spearman_with_seed, variant_config
from sim_bridge.contract.files import with_overrides
from sim_bridge.abtest import TABLE_COLUMNS
from tests.search.conftest import run_main

VARIANTS = ("dssm", "dense_block_emb64")


def cli(*args: str):
    return run_main("search.seed_table", *args)


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("seed")
    proc = cli("--out", str(out), "--smoke", "--sessions", "600", "--variants", ",".join(VARIANTS))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_published_numbers_name_every_variant():
    _, variants = read_variants(VARIANTS_FILE)
    assert list(SEED_PUBLISHED) == list(variants)  # one published row per variant, in the table's order


def test_csv_in_the_seeds_columns(table_dir):
    table = pd.read_csv(table_dir / "seed_table.csv")
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert table["model"].tolist() == [v for v in VARIANTS for _ in range(4)]
    assert set(table["metric"]) == {"time", "sessions", "mean_tracks_per_session", "mean_time_per_session"}


def test_markdown_beside_the_published_numbers(table_dir):
    md = (table_dir / "seed_table.md").read_text()
    assert "seed's effect % [CI]" in md and "best val loss" in md
    assert "| 1 | dssm |" in md and "-8.71 [-11.62, -5.79] | yes" in md
    assert "| 9 | dense_block_emb64 |" in md and "+1.64 [-3.45, +6.73] | no" in md


def test_every_epoch_is_printed(tmp_path):
    proc = cli("--out", str(tmp_path), "--smoke", "--sessions", "300", "--variants", "dssm")
    assert proc.returncode == 0, proc.stderr[-3000:]
    epochs = [line for line in proc.stdout.splitlines() if line.startswith("epoch ")]
    assert epochs and epochs[0].split()[:2] == ["epoch", "1"] and "val" in epochs[0]


def test_refuses_to_overwrite_without_force(table_dir):
    before = (table_dir / "seed_table.csv").read_text()
    proc = cli("--out", str(table_dir), "--smoke", "--variants", "dssm")
    assert proc.returncode != 0 and "--force" in proc.stderr and "Traceback" not in proc.stderr
    assert (table_dir / "seed_table.csv").read_text() == before


def test_unknown_variant_is_a_clean_error(tmp_path):
    proc = cli("--out", str(tmp_path), "--smoke", "--variants", "dssm,nope")
    assert proc.returncode != 0 and "unknown variant(s) nope" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "seed_table.csv").exists()


def test_a_world_missing_a_file_is_a_clean_error(tmp_path):
    from sim_bridge import defaults

    world = tmp_path / "w"
    shutil.copytree(defaults.ensure_smoke_world(), world, ignore=shutil.ignore_patterns("logs-*", "users.json"))
    out = tmp_path / "out"
    proc = cli("--out", str(out), "--smoke", "--world", str(world), "--variants", "dssm")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == f"error: {world}: missing users.json (expected the course's world format)\n"
    assert not out.exists()


def test_every_variant_trains_the_bag_densely_as_the_seed_did():
    assert all(not variant_config(name, False).model.sparse_bag for name in SEED_PUBLISHED)


def test_every_variant_trains_on_one_thread_so_a_row_is_the_same_on_any_machine():
    assert {variant_config(name, smoke).train.num_threads for name in SEED_PUBLISHED for smoke in (False, True)} == {1}


def test_train_seed_retrains_a_row_with_both_seeds_and_nothing_else():
    default, again = variant_config("dssm", False), variant_config("dssm", False, train_seed=3)
    assert (default.features.seed, default.train.seed) == (0, 0)
    assert again == with_overrides(default, {"features.seed": 3, "train.seed": 3})


def test_train_seed_from_the_command_line_trains_the_row_again(table_dir, tmp_path):
    proc = cli("--out", str(tmp_path), "--smoke", "--sessions", "600", "--variants", "dssm", "--train-seed", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "seed_table.md").read_text()
    assert "training seed 1" in md and "training seed" not in (table_dir / "seed_table.md").read_text()
    val_loss = lambda text: next(line for line in text.splitlines() if line.startswith("| 1 | dssm |")).split(" | ")[7]
    assert val_loss(md) != val_loss((table_dir / "seed_table.md").read_text())  # another training, not a copy
    control = lambda folder: pd.read_csv(folder / "seed_table.csv").query("model == 'dssm'")["control_mean"].iloc[0]
    assert control(tmp_path) != control(table_dir)  # fresh A/B sessions: the sticky_artist arm differs too


def test_a_negative_train_seed_is_a_clean_error(tmp_path):
    proc = cli("--out", str(tmp_path), "--smoke", "--variants", "dssm", "--train-seed", "-1")
    assert proc.returncode == 2 and proc.stderr == "error: --train-seed must be >= 0, got -1\n"
    assert not (tmp_path / "seed_table.csv").exists()


def test_spearman_with_the_seed_orders_rows_by_rank():
    published = {name: effect for name, (effect, _, _) in SEED_PUBLISHED.items()}
    assert spearman_with_seed(published) == pytest.approx(1.0)
    assert spearman_with_seed({n: -e for n, e in published.items()}) == pytest.approx(-1.0)
    assert spearman_with_seed({n: e ** 3 for n, e in published.items()}) == pytest.approx(1.0)  # ranks only
    assert spearman_with_seed({"dssm": 1.0, "l2_normalize": 2.0}) is None  # too few rows to rank


def _write_run(folder, effects):
    folder.mkdir()
    rows = [{"model": name, "metric": metric, "effect": effect if metric == "mean_time_per_session" else 99.0,
             "upper": effect + 4, "lower": effect - 4, "control_mean": 3.0, "treatment_mean": 3.0,
             "significant": False} for name, effect in effects.items() for metric in ("time", "mean_time_per_session")]
    pd.DataFrame(rows, columns=TABLE_COLUMNS).to_csv(folder / "seed_table.csv", index=False)


def test_pool_averages_each_row_over_the_trainings(tmp_path):
    _write_run(tmp_path / "a", {"dssm": -10.0, "l2_normalize": -12.0, "layernorm": -4.0})
    _write_run(tmp_path / "b", {"dssm": -6.0, "l2_normalize": -8.0})
    _write_run(tmp_path / "c", {"dssm": -8.0, "l2_normalize": -10.0})
    proc = cli("--out", str(tmp_path / "out"), "--pool", *(str(tmp_path / x) for x in "abc"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "out" / "seed_table_pooled.md").read_text()
    half = 4.302653 * 2.0 / np.sqrt(3)  # t(0.975, 2 df) · sd(−10, −6, −8) / √3
    assert f"| 1 | dssm | 3 | -8.00 [{-8 - half:+.2f}, {-8 + half:+.2f}] | -10.00, -6.00, -8.00 |" in md
    assert md.count("| yes |") == 2 and "| -18.33 [-22.04, -14.61] | no |" in md  # l2_normalize −10 is outside
    assert "| 2 | l2_normalize | 3 | -10.00 [" in md and "| 3 | layernorm | 1 | -4.00 (one training) |" in md
    assert "with the seed's effects over these rows: +1.00" in md  # −10 < −8 < −4, the seed's order


def test_pool_gives_the_spearman_without_row_2_beside_the_one_over_every_row(tmp_path):
    # rows 1, 3, 4 in the seed's order; row 2 (the seed's worst) here the best
    _write_run(tmp_path / "a", {"dssm": -9.0, "l2_normalize": 5.0, "layernorm": -5.0, "layernorm_h64_wd": -2.0})
    proc = cli("--out", str(tmp_path / "out"), "--pool", str(tmp_path / "a"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "out" / "seed_table_pooled.md").read_text()
    assert "over these rows: -0.20; without row 2 (l2_normalize): +1.00" in md  # 1 - 6·(1+9+1+1)/(4·(16-1))


def test_pool_of_a_folder_without_a_table_is_a_clean_error(tmp_path):
    _write_run(tmp_path / "a", {"dssm": -10.0})
    proc = cli("--out", str(tmp_path / "out"), "--pool", str(tmp_path / "a"), str(tmp_path / "missing"))
    assert proc.returncode == 2 and "missing: no seed_table.csv" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_pool_of_a_table_that_is_not_csv_is_a_clean_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "seed_table.csv").write_bytes(b"")
    proc = cli("--out", str(tmp_path / "out"), "--pool", str(tmp_path / "a"))
    assert proc.returncode == 2 and "seed_table.csv: not a readable CSV" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
