"""search.serving_search: a trial's serving chosen by simulation over its lists."""
import numpy as np

from sim_bridge.contract.recs import ServingConfig

from search.config import ServingSearchConfig
from search.serving_search import Lists, ServingTuner


def tuner_for(trial, cfg: ServingSearchConfig) -> ServingTuner:
    return ServingTuner(cfg, trial.simulator, trial.control(cfg.sessions, cfg.seed), cfg.seed)


def test_the_search_keeps_the_best_serving_it_measured(tiny_trial):
    cfg = ServingSearchConfig(policies=["indexed", "i2i"], sessions=400, seed=5,
                              knobs={"k": [5, 20], "like_threshold": [0.3, 0.9], "skip_artists": [0, 2]}, stepped=[])
    tuner = tuner_for(tiny_trial, cfg)
    lists = tuner.lists(tiny_trial.model, tiny_trial.data)
    start = ServingConfig("indexed", k=20)
    choice = tuner.search(lists, start)
    assert choice.lift == tuner.lift(choice.serving, lists)  # same seed, same sessions: exact
    # every policy at its own best knobs: the choice beats each one's tuned best or equals it
    for policy in cfg.policies:
        tuned = tuner.tune(lists, ServingConfig(policy, k=20))
        assert choice.lift >= tuned.lift
        assert tuned.lift >= tuner.lift(ServingConfig(policy, k=20), lists)  # descent never loses its start
    # indexed reads only k (one more value); i2i reads three knobs, 2 × 2 × 2 combinations at most
    assert choice.tried <= 2 + 8


def test_descent_passes_until_a_pass_changes_nothing(tiny_trial):
    cfg = ServingSearchConfig(policies=["i2i"], sessions=300, seed=7,
                              knobs={"like_threshold": [0.3, 0.6, 0.9], "skip_artists": [0, 1, 3, 8]}, stepped=[])
    tuner = tuner_for(tiny_trial, cfg)
    lists = tuner.lists(tiny_trial.model, tiny_trial.data, min_k=20)
    choice = tuner.tune(lists, ServingConfig("i2i", k=20))
    # a local optimum of the grid: no single knob's other value does better
    for knob, values in cfg.knobs.items():
        for value in values:
            other = ServingConfig(**{**vars(choice.serving), knob: value})
            assert tuner.lift(other, lists) <= choice.lift
    one_pass = tuner.tune(lists, ServingConfig("i2i", k=20), max_passes=1)
    assert choice.lift >= one_pass.lift and choice.tried >= one_pass.tried


def test_a_policy_is_tried_only_with_the_knobs_it_reads(tiny_trial):
    cfg = ServingSearchConfig(policies=["indexed"], sessions=300, seed=6,
                              knobs={"k": [5, 10], "like_threshold": [0.3, 0.9]}, stepped=[])
    tuner = tuner_for(tiny_trial, cfg)
    choice = tuner.search(tuner.lists(tiny_trial.model, tiny_trial.data), ServingConfig("indexed", k=10))
    assert choice.tried == 2  # indexed with k 10 (the start), then k 5; like_threshold is not its knob
    assert choice.serving.like_threshold == 0.5


def test_lists_are_cut_to_each_candidate_k():
    lists = Lists({1: np.arange(10)}, {2: np.arange(20, 30)})
    cut = lists.truncated(3)
    assert cut.user[1].tolist() == [0, 1, 2] and cut.item[2].tolist() == [20, 21, 22]
    assert Lists(None, {2: np.arange(4)}).truncated(2).user is None


def test_lists_computed_as_read_are_cut_and_completed_sharing_what_was_computed():
    from model.infer import ItemNeighbours

    emb = np.arange(12, dtype=np.float32).reshape(6, 2) ** 1.5  # distinct, spread points
    lists = Lists(None, ItemNeighbours(emb, np.arange(6), 6, k=4), k=4)
    cut = lists.truncated(2)
    assert cut.k == 2 and cut.item[np.array([0])].tolist() == [[1, 2]]  # nearest first, itself left out
    assert lists.item.computed == 1  # the cut view computed track 0's list for both
    whole = lists.complete()
    assert isinstance(whole.item, dict) and lists.item.computed == 6 and whole.item[5].tolist() == [4, 3, 2, 1]


class _Scripted(ServingTuner):
    """A tuner whose lift is a known function of the knobs (no simulation): what each search
    tries, and where it ends, can be checked exactly."""

    def __init__(self, cfg: ServingSearchConfig, lift_of):
        self.cfg, self.lift_of, self.asked = cfg, lift_of, []

    def lift(self, serving, lists):
        self.asked.append(serving.skip_artists)
        return self.lift_of(serving)


SKIPS = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89]


def test_a_stepped_knob_climbs_to_its_peak_and_stops_at_the_first_drop():
    cfg = ServingSearchConfig(policies=["i2i"], knobs={"skip_artists": SKIPS}, stepped=["skip_artists"])
    peak = lambda s: -abs(s.skip_artists - 13)  # noqa: E731  unimodal, highest at 13
    tuner = _Scripted(cfg, peak)
    choice = tuner.tune(Lists(None, None), ServingConfig("i2i", k=10, skip_artists=3))
    assert choice.serving.skip_artists == 13
    # 3 (start), 2 (down: worse), 5, 8, 13, 21 (up until the drop); the second pass measures nothing new
    assert tuner.asked == [3, 2, 5, 8, 13, 21] and choice.tried == 6
    full = _Scripted(ServingSearchConfig(policies=["i2i"], knobs={"skip_artists": SKIPS}, stepped=[]), peak)
    assert full.tune(Lists(None, None), ServingConfig("i2i", k=10, skip_artists=3)).serving.skip_artists == 13
    assert len(full.asked) == len(SKIPS)  # the whole grid, for the same answer


def test_a_stepped_knob_keeps_a_local_peak_that_the_whole_grid_would_pass():
    two_peaks = lambda s: {1: 5.0, 55: 9.0}.get(s.skip_artists, 0.0)  # noqa: E731
    start = ServingConfig("i2i", k=10, skip_artists=0)
    stepped = ServingSearchConfig(policies=["i2i"], knobs={"skip_artists": SKIPS}, stepped=["skip_artists"])
    assert _Scripted(stepped, two_peaks).tune(Lists(None, None), start).serving.skip_artists == 1
    whole = ServingSearchConfig(policies=["i2i"], knobs={"skip_artists": SKIPS}, stepped=[])
    assert _Scripted(whole, two_peaks).tune(Lists(None, None), start).serving.skip_artists == 55


def test_a_stepped_start_off_its_grid_tries_the_whole_grid_first():
    cfg = ServingSearchConfig(policies=["i2i"], knobs={"skip_artists": SKIPS}, stepped=["skip_artists"])
    tuner = _Scripted(cfg, lambda s: -abs(s.skip_artists - 34))
    assert tuner.tune(Lists(None, None), ServingConfig("i2i", k=10, skip_artists=4)).serving.skip_artists == 34
    assert sorted(tuner.asked) == sorted([4, *SKIPS])


def test_a_stepped_start_off_its_grid_that_nothing_beats_is_kept():
    cfg = ServingSearchConfig(policies=["i2i"], knobs={"skip_artists": SKIPS}, stepped=["skip_artists"])
    tuner = _Scripted(cfg, lambda s: -abs(s.skip_artists - 4))  # the start is the peak
    assert tuner.tune(Lists(None, None), ServingConfig("i2i", k=10, skip_artists=4)).serving.skip_artists == 4
