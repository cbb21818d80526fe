"""The experiment folder: a trial's per-track lists: ragged lists survive a round trip."""
import numpy as np

from search import experiment


def test_ragged_lists_round_trip_through_the_trial_folder(tmp_path):
    lists = {7: np.array([1, 2, 3]), 9: np.array([4])}
    experiment._save_lists(tmp_path / experiment.ITEM_RECS_FILE, lists)
    back = experiment.load_item_recs(tmp_path)
    assert back.keys() == lists.keys() and all((back[k] == lists[k]).all() for k in lists)
    assert experiment.load_item_recs(tmp_path / "nowhere") is None
