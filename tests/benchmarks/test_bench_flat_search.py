"""benchmarks/bench_flat_search.py runs end to end in its smoke mode."""
from model.infer import BLAS_FROM_QUERIES
from search.config import load_smoke
from tests.benchmarks.smoke import last_json, run


def test_bench_flat_search_smoke_times_every_batch_both_ways():
    figures = last_json(run("bench_flat_search.py", "--smoke"))
    sizes = load_smoke().benchmarks["bench_flat_search"]["batches"]
    assert set(figures["batches"]) == {str(n) for n in sizes} and figures["blas_from_queries"] == BLAS_FROM_QUERIES
    for n, row in figures["batches"].items():
        slow, fast = row["default_ms_per_query"], row["flat_search_ms_per_query"]
        assert slow > 0 and fast > 0 and abs(row["ratio"] - slow / fast) <= 0.01 + 0.01 * slow / fast
        assert 0 <= row["same_rows"] <= 1
        if int(n) < BLAS_FROM_QUERIES:  # below the switch both scan query by query: the very same lists
            assert row["same_rows"] == 1
