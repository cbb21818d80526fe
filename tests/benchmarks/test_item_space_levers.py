"""benchmarks/item_space_levers.py runs end to end in its smoke mode."""
import json

from tests.benchmarks.smoke import run


def test_item_space_levers_smoke_scores_a_lever_and_the_ceiling():
    rows = {r["lever"]: r for r in map(json.loads, run("item_space_levers.py", "--smoke").strip().splitlines()[-3:])}
    assert set(rows) == {"base", "session pairs, window 10", "true embeddings, cosine"}
    assert rows["base"]["pairs"] == 0 and rows["session pairs, window 10"]["pairs"] > 0
    assert rows["base"]["epochs"] == 1 and "epochs" not in rows["true embeddings, cosine"]
    for row in rows.values():
        assert row["lower"] <= row["lift"] <= row["upper"] and row["upper"] > row["lower"]
    # the world's own item space is the ceiling: on the tiny world it beats a 1-epoch model by far
    assert rows["true embeddings, cosine"]["lower"] > rows["base"]["upper"]
