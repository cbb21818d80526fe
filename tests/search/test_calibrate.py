"""search.calibrate: the objective's arithmetic, its settings checks and a smoke search."""
import math

import pandas as pd
import pytest

from search import calibrate
from search.config import load_smoke
from search.seed_table import SEED_PUBLISHED

ON_TARGET = {"random": 2.05, "sticky_artist": 2.99, "toppop": 2.12, "dssm": -8.71, "dense_block_emb64": 1.64}
ROWS = ["dssm", "dense_block_emb64"]


def test_distance_is_zero_on_target_and_counts_misses_in_tolerances():
    assert calibrate.distance(ON_TARGET, ROWS) == 0.0
    # random 3% high = one tolerance; dssm one CI half-width above the seed's effect
    effect, lower, upper = SEED_PUBLISHED["dssm"]
    off = {**ON_TARGET, "random": 2.05 * 1.03, "dssm": effect + (upper - lower) / 2}
    assert calibrate.distance(off, ROWS) == pytest.approx(math.sqrt(2 / 5))


def test_an_unmeasured_row_counts_as_a_large_miss():
    gated = {k: v for k, v in ON_TARGET.items() if k != "dssm"}
    assert calibrate.distance(gated, ROWS) == pytest.approx(calibrate.GATED / math.sqrt(5))


def test_unknown_row_and_bad_space_key_are_refused(tmp_path, capsys):
    bad = tmp_path / "cal.yaml"
    bad.write_text(f"world: {calibrate.REPO}/configs/world_v2.yaml\nvariants: [nope]\nspace:\n"
                   "  hub_m0: {type: uniform, low: 0.5, high: 1.0}\n")
    assert calibrate.main(["--config", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "unknown seed-table row(s) nope" in capsys.readouterr().err
    bad.write_text(f"world: {calibrate.REPO}/configs/world_v2.yaml\nspace:\n"
                   "  no_such_knob: {type: uniform, low: 0.5, high: 1.0}\n")
    assert calibrate.main(["--config", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "space.no_such_knob" in capsys.readouterr().err
    bad.write_text(f"world: {calibrate.REPO}/configs/world_v2.yaml\nspace:\n"
                   "  logging.sesions: {type: int, low: 1000, high: 2000}\n")
    assert calibrate.main(["--config", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "space.logging.sesions" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_point_splits_into_world_and_logging_run_overrides():
    world, logging = calibrate.split_point({"hub_m0": 0.4, "logging.sessions": 30_000, "band_scale": 1.0})
    assert world == {"hub_m0": 0.4, "band_scale": 1.0} and logging == {"sessions": 30_000}


def test_smoke_search_writes_trials_and_the_best_world(tmp_path):
    out = tmp_path / "cal"
    assert calibrate.main(["--smoke", "--out", str(out)]) == 0
    trials = pd.read_csv(out / "calibration.csv")
    assert len(trials) == load_smoke().calibrate.num_samples and trials["distance"].is_monotonic_increasing
    assert {"random_time", "toppop_time", "dssm_effect", "dense_block_emb64_upper"} <= set(trials.columns)
    from sim_bridge.defaults import logging_config
    from sim_bridge.worldgen import load_world_config

    V2 = calibrate.REPO / "configs" / "world_v2.yaml"

    best = load_world_config(out / "best_world.yaml")
    assert best.generator == "v2" and best.genre_noise == pytest.approx(trials.loc[0, "genre_noise"])
    run = logging_config(out / "best_world.yaml")  # the logging run the trials were measured with
    assert run.sessions == load_smoke().calibrate.logging_sessions and run.arms == logging_config(V2).arms
    assert calibrate.main(["--smoke", "--out", str(out)]) == 2  # results kept unless --force


@pytest.mark.parametrize("seeds", ["[]", "[0, -1]", "[1, 1]"])
def test_bad_train_seeds_are_refused(tmp_path, capsys, seeds):
    bad = tmp_path / "cal.yaml"
    bad.write_text(f"world: {calibrate.REPO}/configs/world_v2.yaml\ntrain_seeds: {seeds}\nspace:\n"
                   "  genre_noise: {type: uniform, low: 0.2, high: 0.7}\n")
    assert calibrate.main(["--config", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "train_seeds: expected distinct training seeds >= 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_several_train_seeds_average_the_rows_trainings():
    import dataclasses

    from search.seed_table import pooled_effect

    settings, base, logging, _ = calibrate.load_settings(calibrate.DEFAULT_CONFIG, smoke=True)
    settings = dataclasses.replace(settings, variants=["dssm"], gate_pct=1000.0)
    one = [calibrate.evaluate_world(base, logging, dataclasses.replace(settings, train_seeds=[s]), smoke=True)
           for s in (0, 1)]
    both = calibrate.evaluate_world(base, logging, dataclasses.replace(settings, train_seeds=[0, 1]), smoke=True)
    effects = [o["dssm_effect"] for o in one]
    assert effects[0] != effects[1]  # two trainings, two A/Bs
    mean, lower, upper = pooled_effect(effects)
    assert both["dssm_effect"] == pytest.approx(sum(effects) / 2) == pytest.approx(mean)
    assert (both["dssm_lower"], both["dssm_upper"]) == pytest.approx((lower, upper))
    assert both["random_time"] == one[0]["random_time"]  # the baselines do not depend on the training
