"""benchmarks/bench_train.py runs end to end in its smoke mode."""
import math

from tests.benchmarks.smoke import last_json, run


def test_bench_train_smoke_measures_both_paths_and_one_epoch():
    out = last_json(run("bench_train.py", "--smoke"))
    assert out["source"].startswith("logs:") and out["n_train"] > 0 and out["n_items"] > 0
    assert out["sparse_triplets_per_s"] > 0 and out["dense_triplets_per_s"] > 0
    assert abs(out["speedup_sparse_vs_dense"] - out["sparse_triplets_per_s"] / out["dense_triplets_per_s"]) < 0.02
    assert out["epochs"] == 1 and out["best_epoch"] == 1
    assert math.isfinite(out["best_val_loss"]) and out["best_val_loss"] > 0
