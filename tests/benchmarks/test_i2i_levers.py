"""benchmarks/i2i_levers.py runs end to end in its smoke mode."""
from tests.benchmarks.smoke import last_json, run


def test_i2i_levers_smoke_trains_and_scores_the_base_row():
    row = last_json(run("i2i_levers.py", "--smoke"))
    assert row["lever"] == "base" and row["epochs"] == 1 and row["items"] > 0 and row["train_s"] >= 0
    assert row["lower"] <= row["lift"] <= row["upper"] and row["upper"] > row["lower"]
