"""search.trials: every trial's row and stop reason in trials.parquet, ASHA's record, summary.md."""
from search import experiment, trials


def _trial(trial_id, status, last, config=None):
    from types import SimpleNamespace

    return SimpleNamespace(trial_id=trial_id, status=status, last_result=last, config=config or {},
                           checkpoint=None, path=f"/x/{trial_id}")


FINAL = {"final": True, "score": 90.0, "lift_vs_sticky": 91.0, "lift_lower": 88.0, "lift_upper": 94.0,
         "val_loss": 0.2, "time_per_session": 5.0, "epoch": 12, "rung_lift": 89.5, "serving/policy": "i2i",
         "serving/k": 200, "serving/like_threshold": 0.5, "serving/skip_artists": 1, "time_total_s": 60.0}


def _frame():
    import pandas as pd

    cfg = {"train.weight_decay": 1e-6, "train.min_delta": 0.0, "seed": 0}
    tune_trials = [_trial("a", "TERMINATED", {**FINAL, "stop_reason": "max_epochs"}, cfg),
                   _trial("b", "TERMINATED", {**FINAL, "score": 95.0, "epoch": 5, "stop_reason": "early_stopping"},
                          {**cfg, "train.min_delta": 3e-3}),
                   _trial("c", "TERMINATED", {"final": False, "epoch": 1, "rung_lift": 20.0}, cfg),  # ASHA
                   _trial("d", "TERMINATED", {"final": False, "epoch": 4, "rung_lift": 60.0}, cfg),  # time budget
                   _trial("e", "ERROR", {}, cfg),
                   _trial("f", "RUNNING", {"final": False, "epoch": 2}, cfg)]
    return pd.DataFrame([trials._row(t, {"c"}) for t in tune_trials])


def test_every_trial_records_why_it_ended_in_trials_parquet(tmp_path):
    import pandas as pd

    trials.write_trials(_frame(), tmp_path)
    back = pd.read_parquet(tmp_path / experiment.TRIALS_FILE).set_index("trial_id")
    assert back["stop_reason"].fillna("none").to_dict() == {"a": "max_epochs", "b": "early_stopping", "c": "asha",
                                                            "d": "time_budget", "e": "error", "f": "none"}
    assert back.loc["c", "status"] == back.loc["d", "status"] == "stopped"
    assert set(back["stop_reason"].dropna()) <= set(trials.STOP_REASONS)
    assert trials.ended(back) == 4 and trials.budget_cut(back) == 1  # d takes no sample; f still runs


def test_asha_stopped_reads_the_schedulers_record(tmp_path):
    assert trials.asha_stopped(tmp_path) == set()
    (tmp_path / experiment.ASHA_STOPS_FILE).write_text("t1\nt2\n")
    assert trials.asha_stopped(tmp_path) == {"t1", "t2"}


def test_summary_has_the_progress_columns_and_the_stop_reasons(tmp_path):
    from search.config import objective

    text = trials.write_summary(_frame(), objective("score"), tmp_path).read_text()
    assert "Stop reasons: 1 asha, 1 early_stopping, 1 max_epochs, 1 error, 1 time_budget." in text
    lines = [x for x in text.splitlines() if x.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head[:8] == ["trial", "state", "epochs", "rung_lift", "lift_vs_sticky [95% CI]", "serving", "val_loss",
                        "stop_reason"]
    assert "train.weight_decay" in head and "train.min_delta" in head
    rows = [[c.strip() for c in x.strip("|").split("|")] for x in lines[2:]]
    assert [r[0] for r in rows] == ["b", "a"]  # finished only, best score first
    b = dict(zip(head, rows[0]))
    assert b["lift_vs_sticky [95% CI]"] == "+91.0 [+88.0, +94.0]" and b["serving"] == "i2i k=200 like=0.5 skip=1"
    assert b["epochs"] == "5" and b["stop_reason"] == "early_stopping" and b["state"] == "finished"
    assert b["train.weight_decay"] == "1e-06" and b["train.min_delta"] == "0.003"
    assert dict(zip(head, rows[1]))["train.min_delta"] == "0"
