"""benchmarks/catalog_stats.py runs end to end in its smoke mode, on the built-in (course-schema) world."""
from tests.benchmarks.smoke import last_json, run


def test_catalog_stats_smoke_prints_the_courses_table_and_its_figures():
    out = run("catalog_stats.py", "--smoke")
    figures = last_json(out)
    assert figures["tracks"] == 5_000 and "| genre: [1] alone / id 1 anywhere |" in out
    assert abs(figures["one_id"] + figures["two_ids"] + figures["three_plus"] - 1) < 1e-9
    assert figures["alone_1"] <= figures["has_1"] and figures["pop_median"] < 0 < figures["pop_sd"]
