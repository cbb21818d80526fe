"""search.seed_table --smoke on two variants: the CSV in the seed's columns, the Markdown beside
the seed's published numbers (docs/seed.md), the overwrite guard and clean errors."""
import shutil

import pandas as pd
import pytest

from model.config import read_variants
from search.seed_table import SEED_PUBLISHED, VARIANTS_FILE, variant_config
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


def test_a_negative_train_seed_is_a_clean_error(tmp_path):
    proc = cli("--out", str(tmp_path), "--smoke", "--variants", "dssm", "--train-seed", "-1")
    assert proc.returncode == 2 and proc.stderr == "error: --train-seed must be >= 0, got -1\n"
    assert not (tmp_path / "seed_table.csv").exists()
