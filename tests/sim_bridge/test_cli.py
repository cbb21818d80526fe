"""``python -m sim_bridge``: each subcommand end to end on the smoke world, and its errors."""
import subprocess
import sys

import pandas as pd
import pytest

from sim_bridge import abtest
from sim_bridge.cli import main
from sim_bridge.defaults import ensure_smoke_world


@pytest.fixture(scope="module")
def world_dir():
    return str(ensure_smoke_world())


def test_simulate_then_analyze(tmp_path, world_dir, capsys):
    logs = tmp_path / "logs.parquet"
    assert main(["simulate", "--world", world_dir, "--experiment", "EXP", "--arms", "C=sticky_artist,T1=random",
                 "--sessions", "2000", "--seed", "1", "--out", str(logs)]) == 0
    assert main(["analyze", "--logs", str(logs), "--experiment", "EXP", "--out", str(tmp_path / "t.csv")]) == 0
    table = pd.read_csv(tmp_path / "t.csv")
    row = table[table["metric"] == "mean_time_per_session"].iloc[0]
    assert row["effect"] < 0 and bool(row["significant"])  # random loses to sticky_artist
    assert "mean_time_per_session" in capsys.readouterr().out


def test_logs_runs_a_named_logging_config_and_prints_its_training_figures(tmp_path, world_dir, capsys):
    from sim_bridge.contract.logs import read_logs
    from sim_bridge.defaults import LoggingConfig, simulate_logs

    config = tmp_path / "logging.yaml"
    config.write_text("experiment: L\narms: [random, sticky_artist, toppop_catalog]\nsessions: 1500\nseed: 4\n")
    out = tmp_path / "logs.parquet"
    assert main(["logs", "--world", world_dir, "--config", str(config), "--out", str(out)]) == 0
    events = read_logs(out)
    positives = events[events["time"] > 0.8]
    per_track = positives["track"].value_counts()
    assert capsys.readouterr().out.endswith(
        f"{len(positives)} positives (time > 0.8), {int((per_track >= 5).sum())} tracks with >= 5\n")
    assert (events["message"] == "last").sum() == 1500 and len(positives) >= 1500  # each first track is one
    simulate_logs(world_dir, LoggingConfig("L", ["random", "sticky_artist", "toppop_catalog"], 1500, 4),
                  tmp_path / "same.parquet")  # the config file is the same run as the defaults' logging runs
    assert read_logs(tmp_path / "same.parquet").equals(events)
    config.write_text("experiment: L\narms: [nonsense]\nsessions: 10\nseed: 4\n")
    assert main(["logs", "--world", world_dir, "--config", str(config), "--out", str(tmp_path / "x.parquet")]) == 2
    assert f"{config}: arms: " in capsys.readouterr().err


def test_abtest_writes_the_course_table(tmp_path, world_dir):
    out = tmp_path / "table.csv"
    assert main(["abtest", "--world", world_dir, "--control", "sticky_artist", "--treatment", "random",
                 "--sessions", "3000", "--seed", "3", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["model", "metric", "effect", "upper", "lower", "control_mean",
                                   "treatment_mean", "significant"]
    assert list(table["metric"]) == list(abtest.DEFAULT_METRICS)
    assert set(table["model"]) == {"random"}


def test_world_command_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["world", "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_bad_arms_and_policy_are_clear_errors(tmp_path, world_dir, capsys):
    args = ["simulate", "--world", world_dir, "--experiment", "E", "--sessions", "10", "--out", str(tmp_path / "l.json")]
    assert main(args + ["--arms", "T1=random,C=sticky_artist"]) == 2
    assert "arms must be named C,T1" in capsys.readouterr().err
    assert main(args + ["--arms", "C=random,T1=nope"]) == 2
    assert "unknown policy 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "l.json").exists()


def test_help_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "sim_bridge", "abtest", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--treatment" in out.stdout


def test_abtest_names_the_flag_of_a_bad_policy(world_dir, capsys):
    assert main(["abtest", "--world", world_dir, "--control", "sticky_artist", "--treatment", "toppop_catalog:abc",
                 "--sessions", "10"]) == 2
    captured = capsys.readouterr()
    assert captured.err == ("error: --treatment: policy 'toppop_catalog:abc': expected toppop_catalog or "
                            "toppop_catalog:N with N a positive integer, got 'abc'\n")


def test_abtest_refuses_a_bad_contextual_hidden_size(world_dir, capsys):
    assert main(["abtest", "--world", world_dir, "--control", "sticky_artist", "--treatment",
                 "contextual_hidden:0", "--sessions", "10"]) == 2
    assert capsys.readouterr().err == ("error: --treatment: policy 'contextual_hidden:0': expected contextual_hidden "
                                       "or contextual_hidden:N with N a positive integer, got '0'\n")


def test_the_old_name_of_the_hidden_list_policy_is_refused_with_the_new_one(world_dir, capsys):
    assert main(["abtest", "--world", world_dir, "--control", "sticky_artist", "--treatment",
                 "contextual_catalog:100", "--sessions", "10"]) == 2
    assert capsys.readouterr().err == (
        "error: --treatment: policy 'contextual_catalog:100': 'contextual_catalog' is now 'contextual_hidden' "
        "(its lists read the simulator's hidden embeddings): use contextual_hidden:100\n")


def test_table_out_is_checked_before_simulating(tmp_path, world_dir, capsys):
    args = ["abtest", "--world", world_dir, "--control", "random", "--treatment", "random", "--sessions", "10"]
    assert main(args + ["--out", str(tmp_path / "x.txt")]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: --out {tmp_path / 'x.txt'}: unsupported suffix '.txt' (use .csv or .md)\n"
    assert "control:" not in captured.out and not (tmp_path / "x.txt").exists()  # nothing simulated


def test_analyze_keeps_an_existing_table_unless_force(tmp_path, world_dir, capsys):
    logs, table = tmp_path / "l.parquet", tmp_path / "t.csv"
    assert main(["simulate", "--world", world_dir, "--experiment", "E", "--arms", "C=random,T1=sticky_artist",
                 "--sessions", "200", "--out", str(logs)]) == 0
    table.write_text("mine")
    args = ["analyze", "--logs", str(logs), "--experiment", "E", "--out", str(table)]
    capsys.readouterr()
    assert main(args) == 2
    assert capsys.readouterr().err == f"error: --out {table}: already exists; pass --force to replace it\n"
    assert table.read_text() == "mine"
    assert main(args + ["--force"]) == 0 and table.read_text().startswith("model,metric,")
