"""benchmarks/world_panel.py runs its loops end to end in smoke mode, and a rerun redoes nothing."""
import json
import math

from tests.benchmarks.smoke import last_json, run


def test_world_panel_smoke_runs_the_loop_and_sets_the_ceiling_beside_each_round(tmp_path):
    out = tmp_path / "panel"
    first = last_json(run("world_panel.py", "--smoke", "--out", str(out)))["rows"]
    assert [(r["row"], r["round"]) for r in first] == [("public", 1), ("public", 2)]
    assert first[1]["events"] > first[0]["events"]  # round 2 searched round 1's logs and the new events
    for r in first:
        assert all(math.isfinite(r[k]) for k in ("best_lift", "confirmed_lift", "ceiling_lift"))
    stored = json.loads((out / "panel.json").read_text())["rows"]
    assert [r["ceiling"] for r in stored] == [f"i2i_hidden:200:{s['like_threshold']!r}:{s['skip_artists']}"
                                             for s in (json.loads((out / "public" / "state.json").read_text())
                                                       ["rounds"][str(r["round"])]["export"]["serving"]
                                                       for r in stored)]
    assert "| smoke world (public) | 2 |" in (out / "panel.md").read_text()
    # a rerun reads the finished rounds: the same figures, no search run again
    again = run("world_panel.py", "--smoke", "--out", str(out))
    assert "all 2 rounds are done" in again and "python -m search.run" not in again
    assert last_json(again)["rows"] == first
