"""botify's arm assignment, checked against mmh3 calls written out by hand."""
import mmh3
import numpy as np
import pytest
from scipy import stats

from sim_bridge.abtest import arm_index, arm_names, assign, experiment_seed


def test_arm_names():
    assert arm_names(1) == ["C"]
    assert arm_names(3) == ["C", "T1", "T2"]
    with pytest.raises(ValueError):
        arm_names(0)


def test_negative_name_hash_is_masked_to_unsigned_seed():
    # mmh3.hash("STICKY") is negative: -1005745659; as an unsigned 32-bit seed that is
    # -1005745659 + 2**32 = 3289221637.
    assert mmh3.hash("STICKY") == -1005745659
    assert experiment_seed("STICKY") == -1005745659 + 2**32 == 3289221637


def test_arm_index_matches_hand_computed_botify_hashes():
    seed = 3289221637  # experiment_seed("STICKY"), see above
    # botify: mmh3.hash(str(user), seed, signed=False) % n_arms
    assert mmh3.hash("0", seed=seed, signed=False) == 1094395420  # % 2 = 0, % 3 = 1
    assert mmh3.hash("1", seed=seed, signed=False) == 2043385748  # % 2 = 0, % 3 = 2
    assert mmh3.hash("42", seed=seed, signed=False) == 2942587820  # % 2 = 0, % 3 = 2
    users = np.array([0, 1, 42, 0])
    np.testing.assert_array_equal(arm_index(users, "STICKY", 2), [0, 0, 0, 0])
    np.testing.assert_array_equal(
        arm_index(users, "STICKY", 3), [1094395420 % 3, 2043385748 % 3, 2942587820 % 3, 1]
    )
    assert list(assign(users, "STICKY", 3)) == ["T1", "T2", "T2", "T1"]


def test_positive_name_hash():
    # mmh3.hash("STICKY_VS_DSSM") = 114631823 >= 0, so it is the seed unchanged.
    seed = mmh3.hash("STICKY_VS_DSSM")
    assert seed == 114631823
    assert mmh3.hash("1", seed=114631823, signed=False) == 149470571  # odd → T1 of 2
    assert mmh3.hash("0", seed=114631823, signed=False) == 3205836814  # even → C
    np.testing.assert_array_equal(arm_index(np.array([1, 0]), "STICKY_VS_DSSM", 2), [1, 0])


def test_arm_index_keeps_shape_and_rejects_floats():
    users = np.arange(6).reshape(2, 3)
    assert arm_index(users, "X", 2).shape == (2, 3)
    with pytest.raises(TypeError):
        arm_index(np.array([1.5]), "X", 2)


@pytest.mark.parametrize("n_arms", [2, 4])
def test_assignment_is_uniform(n_arms):
    n = 20_000
    counts = np.bincount(arm_index(np.arange(n), "UNIFORMITY", n_arms), minlength=n_arms)
    # each count ~ Binomial(n, 1/k): within 5 binomial standard errors of n/k
    se = np.sqrt(n * (1 / n_arms) * (1 - 1 / n_arms))
    assert np.all(np.abs(counts - n / n_arms) < 5 * se), counts
    chi2 = ((counts - n / n_arms) ** 2 / (n / n_arms)).sum()
    assert chi2 < stats.chi2.ppf(1 - 1e-4, df=n_arms - 1)


def test_different_experiments_assign_differently():
    users = np.arange(1000)
    a, b = arm_index(users, "A", 2), arm_index(users, "B", 2)
    # independent hashes agree on about half the users (SE = sqrt(1000/4) ~ 16)
    assert abs((a == b).sum() - 500) < 5 * 16
