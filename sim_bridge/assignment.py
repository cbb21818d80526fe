"""botify's user → experiment-arm assignment (docs/ab_test.md), bit-identical to ``Experiment.assign``.

botify hashes the experiment name once, ``h = mmh3.hash(name)`` (signed 32-bit, seed 0), and
assigns a user to ``mmh3.hash(str(user), seed=h & 0xFFFFFFFF, signed=False) % n_arms``.
Arm 0 is the control ``"C"``, arm ``k`` is ``f"T{k}"``.
"""
from __future__ import annotations

import mmh3
import numpy as np

CONTROL = "C"


def arm_names(n_arms: int) -> list[str]:
    """Names of ``n_arms`` arms: ``["C", "T1", ..., f"T{n_arms - 1}"]``."""
    if n_arms < 1:
        raise ValueError(f"n_arms must be >= 1, got {n_arms}")
    return [CONTROL] + [f"T{k}" for k in range(1, n_arms)]


def experiment_seed(experiment: str) -> int:
    """The murmur3 seed botify derives from an experiment name: ``mmh3.hash(name) & 0xFFFFFFFF``."""
    return mmh3.hash(experiment) & 0xFFFFFFFF


def arm_index(users: np.ndarray, experiment: str, n_arms: int) -> np.ndarray:
    """int64 [n]: botify's arm index (0 = control) of each user in ``users``.

    Hashes each distinct user once (botify hashes ``str(user)``, so ids must be integers).
    """
    if n_arms < 1:
        raise ValueError(f"n_arms must be >= 1, got {n_arms}")
    users = np.asarray(users)
    if users.size and users.dtype.kind not in "iu":
        raise TypeError(f"user ids must be integers, got dtype {users.dtype}")
    seed = experiment_seed(experiment)
    unique, inverse = np.unique(users.astype(np.int64), return_inverse=True)
    hashes = np.fromiter(
        (mmh3.hash(str(int(u)), seed=seed, signed=False) for u in unique),
        dtype=np.int64,
        count=unique.size,
    )
    return (hashes % n_arms)[inverse.reshape(users.shape)]


def assign(users: np.ndarray, experiment: str, n_arms: int) -> np.ndarray:
    """object [n]: arm name ("C", "T1", ...) of each user; see :func:`arm_index`."""
    names = np.array(arm_names(n_arms), dtype=object)
    return names[arm_index(users, experiment, n_arms)]
