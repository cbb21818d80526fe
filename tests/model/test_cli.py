import json

import numpy as np

from sim_bridge.contract.catalog import write_catalog

from model.train import main
from model.checkpoint import load_checkpoint
from tests.model.conftest import TRAIN_YAML
from tests.model.test_dssm import _count
from tests.model.test_no_hidden_data import tiny_yaml


def _world(tmp_path, catalog, events):
    write_catalog(catalog, tmp_path / "tracks.json")
    events.to_json(tmp_path / "logs.json", orient="records", lines=True)
    return tmp_path / "logs.json"


def test_dry_run_prints_param_count(capsys):
    assert main(["--config", str(TRAIN_YAML), "--dry-run", "--n-tracks", "50000", "--n-genres", "20"]) == 0
    # = tests/model/test_dssm.py's arithmetic for embedding 96, hidden 64, 20 genres
    assert json.loads(capsys.readouterr().out)["parameters"] == _count(50_000, 20, 96, 64)


def test_train_writes_outputs_and_refuses_overwrite(tmp_path, catalog, events, capsys):
    logs, out = _world(tmp_path, catalog, events), tmp_path / "out"
    args = ["--config", str(tiny_yaml(tmp_path)), "--logs", str(logs), "--out", str(out), "--device", "cpu",
            "--seed", "3", "--k", "5"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("\nepoch ") + printed.startswith("epoch ") == 2  # one line per epoch
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and len(metrics["history"]) == 2
    recs = [json.loads(x) for x in (out / "recommendations.json").read_text().splitlines()]
    assert all(len(r["tracks"]) == 5 for r in recs)
    model, cfg, maps = load_checkpoint(out / "checkpoint.pt")
    assert cfg.train.seed == 3 and cfg.features.seed == 3
    assert np.array_equal(np.load(out / "item_ids.npy"), maps["track_ids"])
    before = (out / "metrics.json").read_text()
    assert main(args) == 2  # non-empty --out without --force
    assert "not empty" in capsys.readouterr().err and (out / "metrics.json").read_text() == before
    assert main(args + ["--force"]) == 0


def test_clear_errors(tmp_path, capsys):
    assert main(["--config", str(TRAIN_YAML), "--logs", str(tmp_path / "none.json"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.yaml"), "--dry-run"]) == 2
    assert "no such config file" in capsys.readouterr().err
    assert main(["--config", str(TRAIN_YAML), "--variant", "bogus", "--dry-run"]) == 2
    assert "unknown variant" in capsys.readouterr().err


def test_k_must_be_positive_before_any_training(tmp_path, catalog, events, capsys):
    logs, out = _world(tmp_path, catalog, events), tmp_path / "out"
    for k in ("0", "-3"):
        assert main(["--config", str(tiny_yaml(tmp_path)), "--logs", str(logs), "--out", str(out), "--k", k]) == 2
        captured = capsys.readouterr()
        assert captured.err == f"error: --k must be >= 1, got {k}\n"
        assert "epoch" not in captured.out and not out.exists()  # refused before training


def test_force_replaces_the_out_folder_as_a_whole(tmp_path, catalog, events, capsys):
    """A folder named recommendations.json in --out: refused without --force; with it, the new
    output replaces the folder whole (checkpoint and recommendations together)."""
    logs, out = _world(tmp_path, catalog, events), tmp_path / "out"
    (out / "recommendations.json").mkdir(parents=True)
    args = ["--config", str(tiny_yaml(tmp_path)), "--logs", str(logs), "--out", str(out), "--device", "cpu",
            "--k", "5"]
    assert main(args) == 2
    assert capsys.readouterr().err == f"error: --out {out}: already exists and is not empty; pass --force to replace it\n"
    assert (out / "recommendations.json").is_dir()
    assert main(args + ["--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["checkpoint.pt", "recommendations.json", "item_embeddings.npy", "item_ids.npy", "metrics.json"])
    assert (out / "recommendations.json").is_file() and not list(tmp_path.glob(".out.*"))
