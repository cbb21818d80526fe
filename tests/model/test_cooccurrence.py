import numpy as np
import pandas as pd
import pytest

from sim_bridge.contract import columns as C

from model.cooccurrence import artist_vectors


def _sessions(groups, n_sessions: int, seed: int = 0) -> pd.DataFrame:
    """Each session: one user, 4 liked tracks of one artist group, then a disliked track, "last"."""
    rng = np.random.default_rng(seed)
    rows, ts = [], 0
    for s in range(n_sessions):
        group = groups[s % len(groups)]
        for i, track in enumerate(rng.choice(group, size=4, replace=False)):
            ts += 1
            rows.append((s % 7, int(track), 0.9, ts, C.MESSAGE_NEXT))
        ts += 1
        rows.append((s % 7, int(rng.integers(0, 40)), 0.1, ts, C.MESSAGE_LAST))
    return pd.DataFrame(rows, columns=[C.USER, C.TRACK, C.TIME, C.TIMESTAMP, C.MESSAGE])


def test_artists_liked_in_the_same_sessions_get_aligned_vectors():
    artist_of = np.arange(40) // 4  # 10 artists of 4 tracks; artist 9 never liked
    groups = [np.arange(0, 12), np.arange(12, 24), np.arange(24, 36)]  # artists {0,1,2}, {3,4,5}, {6,7,8}
    vec = artist_vectors(_sessions(groups, 300), artist_of, threshold=0.5, dim=3)
    assert vec.shape == (40, 3) and vec.dtype == np.float32
    assert np.array_equal(vec[0], vec[3])  # one artist, one vector
    by_artist = vec[::4]
    cos = by_artist @ by_artist.T
    assert np.allclose(np.diag(cos)[:9], 1.0, atol=1e-5)  # unit length
    assert np.all(by_artist[9] == 0)  # never liked beside another artist
    same = [cos[0, 1], cos[0, 2], cos[3, 4], cos[6, 8]]
    other = [cos[0, 3], cos[0, 6], cos[4, 7]]
    assert min(same) > 0.9 and max(other) < 0.1
    again = artist_vectors(_sessions(groups, 300), artist_of, threshold=0.5, dim=3)
    assert np.array_equal(vec, again)  # seeded SVD


def test_no_vectors_when_off_and_sessions_are_needed():
    events = _sessions([np.arange(0, 12)], 10)
    assert artist_vectors(events, np.arange(40) // 4, 0.5, dim=0).shape == (40, 0)
    with pytest.raises(ValueError, match="message"):
        artist_vectors(events.drop(columns=[C.MESSAGE]), np.arange(40) // 4, 0.5, dim=3)
