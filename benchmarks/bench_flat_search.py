"""Per-query cost of exact nearest-track search, faiss's default vs ``model.infer.flat_search``.

A simulation reads its per-track lists (``model.infer.ItemNeighbours``) a few to a few hundred
tracks at a time. faiss answers a batch by scanning the items query by query until queries ×
dimensions reaches its ``distance_compute_blas_threshold`` (128,000 in faiss 1.15: 2,000 queries of
64 dimensions), and by one matrix product (BLAS) from there; ``flat_search`` lowers the switch to
``BLAS_FROM_QUERIES`` queries. Both run here on the same seeded Gaussian embeddings (one faiss
thread, as a trial runs; one warm-up search each first), each batch size timed as the best of
``--repeats``; the ratio is
default / flat_search per query. ``same_rows``: the share of lists identical (order included)
both ways; near-ties can swap places between the two arithmetic paths, which is why
``ItemNeighbours`` re-ranks faiss's candidates by exact distance.
The last line printed is one JSON object of the figures.

    python benchmarks/bench_flat_search.py [--items 45265] [--dim 64] [--k 217] [--batches 1 4 16 ...]
"""
from __future__ import annotations

import argparse
import json
import time

import faiss
import numpy as np

from model.infer import BLAS_FROM_QUERIES, flat_search

from search.config import parse_benchmark_args

DEFAULT_THRESHOLD = faiss.cvar.distance_compute_blas_threshold  # faiss's own, read before any search


def best_seconds(search, repeats: int) -> tuple[float, np.ndarray]:
    """The fastest of ``repeats`` calls of ``search()`` and the rows it found."""
    best, rows = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        _, rows = search()
        best = min(best, time.perf_counter() - start)
    return best, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=45_265, help="tracks with an embedding (the built-in world's)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=217, help="candidates per list (k 200 + 1 + the re-rank margin)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16, 64, 256, 1024, 1999])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="configs/smoke.yaml's sizes: seconds, for CI")
    args = parse_benchmark_args(parser, "bench_flat_search")
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    items = rng.standard_normal((args.items, args.dim)).astype(np.float32)
    index = faiss.IndexFlatL2(args.dim)
    index.add(items)
    k = min(args.k, args.items)

    def default_search(queries):
        faiss.cvar.distance_compute_blas_threshold = DEFAULT_THRESHOLD
        return index.search(queries, k)

    print(f"{args.items:,} items x {args.dim} dims, k {k}, one thread; BLAS from {BLAS_FROM_QUERIES} queries "
          f"(faiss's default: queries x dims >= {DEFAULT_THRESHOLD:,})")
    for warm_up in (default_search, lambda q: flat_search(index, q, k)):
        warm_up(items[:BLAS_FROM_QUERIES])
    figures = {"items": args.items, "dim": args.dim, "k": k, "blas_from_queries": BLAS_FROM_QUERIES,
               "default_threshold": DEFAULT_THRESHOLD, "batches": {}}
    for n in args.batches:
        queries = items[rng.choice(args.items, min(n, args.items), replace=False)]
        slow, slow_rows = best_seconds(lambda: default_search(queries), args.repeats)
        fast, fast_rows = best_seconds(lambda: flat_search(index, queries, k), args.repeats)
        same = float(np.mean([np.array_equal(a, b) for a, b in zip(slow_rows, fast_rows)]))
        row = {"default_ms_per_query": round(1e3 * slow / len(queries), 4),
               "flat_search_ms_per_query": round(1e3 * fast / len(queries), 4),
               "ratio": round(slow / fast, 2), "same_rows": round(same, 4)}
        figures["batches"][str(n)] = row
        print(f"{n:>6} queries: default {row['default_ms_per_query']:.3f} ms/query, flat_search "
              f"{row['flat_search_ms_per_query']:.3f} ms/query, x{row['ratio']:.2f}, same rows {same:.1%}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
