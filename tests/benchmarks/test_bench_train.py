"""benchmarks/bench_train.py runs end to end in its smoke mode."""
import math

from tests.benchmarks.smoke import last_json, run


def test_bench_train_smoke_compares_both_paths_on_both_configs_and_trains_one_epoch():
    out = last_json(run("bench_train.py", "--smoke"))
    assert out["source"].startswith("logs:")
    for name in ("seed", "card_default"):
        fig = out[name]
        assert fig["n_train"] > 0 and fig["n_items"] > 0
        assert fig["before_triplets_per_s"] > 0 and fig["now_triplets_per_s"] > 0
        assert abs(fig["speedup"] - fig["now_triplets_per_s"] / fig["before_triplets_per_s"]) < 0.01
        assert 0 < fig["matmul_share"] < 1 and 0 < fig["gather_scatter_share"] < 1
        assert fig["matmul_share"] + fig["gather_scatter_share"] < 1
        assert fig["matmul_gflops"] > 0 and fig["core_peak_gflops"] > 0
    assert out["speedup_vs_before"] == out["seed"]["speedup"]
    assert out["epochs"] == 1 and out["best_epoch"] == 1
    assert math.isfinite(out["best_val_loss"]) and out["best_val_loss"] > 0
