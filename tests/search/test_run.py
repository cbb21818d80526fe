"""search.run's input checks: one ``error:`` line, exit 2, before Ray starts and before anything is
written; and the run's settings stored with absolute paths (the shared search of conftest.py)."""
import json
import shutil
from pathlib import Path

import pytest
import yaml

from search.run import main

REPO = Path(__file__).resolve().parents[2]


def _fails(capsys, args, storage: Path) -> str:
    """Run the driver in-process; it must refuse with one line and write nothing under ``storage``."""
    assert main([*args, "--storage-path", str(storage), "--name", "x"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert not storage.exists(), "something was written"
    return lines[0]


@pytest.mark.parametrize("n", ["0", "-1"])
def test_num_samples_must_be_positive(capsys, tmp_path, n):
    line = _fails(capsys, ["--smoke-test", "--num-samples", n], tmp_path / "runs")
    assert line == f"error: --num-samples must be >= 1, got {n}"


def test_storage_path_must_be_a_folder(capsys, tmp_path):
    taken = tmp_path / "runs"
    taken.write_text("mine")
    assert main(["--smoke-test", "--storage-path", str(taken)]) == 2
    assert capsys.readouterr().err == f"error: --storage-path {taken}: is a file, expected a folder\n"
    assert taken.read_text() == "mine"


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(text)
    return path


def _search_yaml(**changes) -> str:
    data = yaml.safe_load((REPO / "configs" / "search.yaml").read_text())
    data["base"] = str(REPO / "configs" / "train.yaml")
    data.update(changes)
    return yaml.safe_dump(data)


@pytest.mark.parametrize("text, expected", [
    ("space: [unclosed\n", "not valid YAML"),
    (None, "unknown key 'bogus'"),
    ("overrides-embedding", "overrides: model.embedding_dim: must be >= 1, got -5"),
    ("overrides-lr", "overrides: train.lr: must be > 0, got 0"),
])
def test_bad_config_is_one_line_naming_file_and_key(capsys, tmp_path, text, expected):
    if text is None:
        text = _search_yaml(bogus=1)
    elif text == "overrides-embedding":
        text = _search_yaml(overrides={"model.embedding_dim": -5})
    elif text == "overrides-lr":
        text = _search_yaml(overrides={"train.lr": 0})
    path = _config(tmp_path, text)
    line = _fails(capsys, ["--smoke-test", "--config", str(path)], tmp_path / "runs")
    assert line.startswith(f"error: {path}: ") and expected in line, line


def test_missing_config_names_the_file_once(capsys, tmp_path):
    path = tmp_path / "nope.yaml"
    line = _fails(capsys, ["--smoke-test", "--config", str(path)], tmp_path / "runs")
    assert line == f"error: {path}: no such config file"


def test_world_config_missing_or_beside_world(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("BOTIFY_TUNE_WORLD_CONFIG", raising=False)
    path = tmp_path / "nope.yaml"
    line = _fails(capsys, ["--world-config", str(path)], tmp_path / "runs")
    assert line == f"error: {path}: no such config file"
    line = _fails(capsys, ["--world-config", str(REPO / "configs" / "world_v1.yaml"), "--world", str(tmp_path),
                           "--logs", str(tmp_path / "l.parquet")], tmp_path / "runs")
    assert line == "error: --world-config picks the built-in world; --world gives one: use one of them"


def test_missing_world_folder(capsys, tmp_path):
    line = _fails(capsys, ["--world", str(tmp_path / "nowhere"), "--logs", str(tmp_path / "l.parquet")],
                  tmp_path / "runs")
    assert line == f"error: --world {tmp_path / 'nowhere'}: no such folder"


def test_world_without_tracks_npy_leaves_the_name_usable(capsys, tmp_path):
    from sim_bridge import defaults

    world = tmp_path / "w"
    shutil.copytree(defaults.ensure_smoke_world(), world, ignore=shutil.ignore_patterns("logs-*", "tracks.npy"))
    line = _fails(capsys, ["--smoke-test", "--world", str(world), "--logs", str(defaults.ensure_smoke_logs())],
                  tmp_path / "runs")
    assert line == f"error: {world.resolve()}: missing tracks.npy (expected the course's world format)"


def test_resume_of_a_run_that_never_started(capsys, tmp_path):
    exp = tmp_path / "runs" / "x"
    exp.mkdir(parents=True)
    (exp / "search_run.json").write_text("{}")
    assert main(["--resume", "--storage-path", str(tmp_path / "runs"), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --resume: the run in ") and "never started" in err and len(err.splitlines()) == 1


def test_settings_store_absolute_paths(killed_search):
    """Started with ``--world relw --logs relw/logs.parquet`` from a scratch directory."""
    settings = json.loads((killed_search.exp / "search_run.json").read_text())
    assert settings["world"] == str(killed_search.world.resolve())
    assert settings["logs"] == str((killed_search.world / "logs.parquet").resolve())
    assert Path(settings["config"]).is_absolute()


def test_resume_from_elsewhere_refuses_a_relative_world(killed_search, tmp_path, monkeypatch, capsys):
    """A run recorded as older versions stored it (``"world": "relw"``), resumed from another directory."""
    storage = tmp_path / "runs"
    shutil.copytree(killed_search.exp, storage / "k", ignore=shutil.ignore_patterns("trainable_*"))
    settings = json.loads((storage / "k" / "search_run.json").read_text())
    (storage / "k" / "search_run.json").write_text(json.dumps({**settings, "world": "relw"}))
    before = sorted(p.name for p in (storage / "k").iterdir())
    monkeypatch.chdir(tmp_path)
    assert main(["--resume", "--storage-path", str(storage), "--name", "k"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {storage / 'k' / 'search_run.json'}: world 'relw' is a relative path, so it cannot "
                   "be found reliably; write its absolute path there\n")
    assert sorted(p.name for p in (storage / "k").iterdir()) == before


# ---------------------------------------------------------------- the status table (progress view)


def _fake_trials():
    from types import SimpleNamespace as T

    best = {"final": True, "score": 95.1, "lift_vs_sticky": 96.0, "lift_lower": 90.0, "lift_upper": 101.2,
            "val_loss": 0.1234567, "epoch": 6, "rung_lift": 93.2, "serving/policy": "i2i", "serving/k": 200,
            "serving/like_threshold": 0.5, "serving/skip_artists": 1, "stop_reason": "rung_plateau",
            "timestamp": 1000 + 754}
    other = {**best, "score": 80.0, "lift_vs_sticky": 81.0, "serving/policy": "indexed", "epoch": 3,
             "stop_reason": "early_stopping", "timestamp": 1000 + 300}
    return [T(trial_id="a", status="RUNNING", last_result=best,
              config={"seed": 0, "train.weight_decay": 1e-6, "train.lr": 0.00123456, "train.min_delta": 0.0,
                      "model.norm": "l2"}),
            T(trial_id="b", status="TERMINATED", last_result={"final": False, "val_loss": 0.5, "epoch": 1, "rung_lift": 20.0},
              config={}),
            T(trial_id="c", status="RUNNING", last_result={"final": False, "epoch": 2, "rung_lift": 50.0, "val_loss": 0.2},
              config={}),
            T(trial_id="d", status="ERROR", last_result={}, config={}),
            T(trial_id="e", status="TERMINATED", last_result=other, config={}),
            T(trial_id="f", status="TERMINATED", last_result={"final": False, "epoch": 4}, config={})]


def test_status_table_columns_reasons_and_best_so_far():
    from search.config import objective
    from search.progress import render

    text = render(_fake_trials(), objective("score"), top=5, ended={"a": "TERMINATED"}, started_at=1000.0,
                  asha={"b"}, now=1000.0 + 3600)
    lines = text.splitlines()
    assert lines[0] == "trials: 2 finished, 2 stopped early, 1 errored, 1 running, 0 pending"
    # f was stopped, but not by ASHA: the time budget stopped it
    assert lines[1] == "stop reasons: 1 rung_plateau, 1 asha, 1 early_stopping, 1 error, 1 time_budget"
    assert lines[2] == ("best so far: a score 95.1 (lift +96.0 [+90.0, +101.2]), found at 12.6 min of wall time "
                        "(60.0 min elapsed)")
    assert lines[3] == "  its config: weight_decay=1e-06 lr=0.00123 min_delta=0 norm=l2"  # :.3g, not 0.0000
    header = lines[4].split()
    assert header == ["trial", "state", "epochs", "rung_lift", "lift_vs_sticky", "[95%", "CI]", "serving",
                      "val_loss", "stop_reason"]
    rows = {line.split()[0]: line for line in lines[5:]}
    assert list(rows) == ["a", "e", "c"]  # the best finished first, then the running ones
    assert rows["a"].split() == ["a", "finished", "6", "93.2", "+96.0", "[+90.0,", "+101.2]", "i2i", "k=200",
                                 "like=0.5", "skip=1", "0.1235", "rung_plateau"]
    assert " indexed k=200 " in rows["e"] and rows["e"].split()[-1] == "early_stopping"  # indexed reads k only
    assert rows["c"].split() == ["c", "running", "2", "50", "-", "-", "0.2", "-"]


def test_status_table_without_a_finished_trial_or_a_start_time():
    from types import SimpleNamespace as T

    from search.config import objective
    from search.progress import render

    text = render([T(trial_id="x", status="PENDING", last_result={}, config={})], objective("score"), top=5)
    assert text == "trials: 0 finished, 0 stopped early, 0 errored, 0 running, 1 pending"
    trials = _fake_trials()[:1]
    line = render(trials, objective("lift"), top=5, ended={"a": "TERMINATED"}).splitlines()[2]
    assert line == "best so far: a lift_vs_sticky 96"  # no start time known: no wall time


def test_the_console_says_when_a_trial_starts_and_after_each_epoch(capsys):
    from types import SimpleNamespace as T

    from search.config import objective
    from search.progress import StatusTable

    table = StatusTable(objective("score"))
    trial = T(trial_id="a", config={"seed": 0, "train.weight_decay": 1e-6, "model.norm": "l2"})
    table.on_trial_start(0, [trial], trial)
    table.on_trial_result(0, [trial], trial, {"final": False, "epoch": 4, "val_loss": 0.21012, "rung_lift": 95.31})
    table.on_trial_result(0, [trial], trial, {"final": True, "epoch": 4, "score": 90.0})  # the view follows instead
    assert capsys.readouterr().out.splitlines() == [
        "trial a started: weight_decay=1e-06 norm=l2",  # Tune's own box printed 0.
        "trial a epoch 4: val_loss 0.2101, best rung lift 95.31"]
