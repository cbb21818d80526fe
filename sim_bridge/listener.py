"""The listener's response to one recommendation (docs/listener.md), shared by both simulators.

Pure functions of numbers: they work on numpy arrays and on scalars alike, so the
vectorised simulator and the per-session reference apply the very same formula.
"""
from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_STEP_MIX = np.uint64(0xD1B54A32D192ED03)
_TWO_POW_MINUS_53 = 1.0 / (1 << 53)


def listen_time(dot, bias, sharpness, gamma, artist_plays):
    """round(σ((⟨e_r, s⟩ − bias) · sharpness) · γ^artist_plays, 2), half to even."""
    fraction = 1.0 / (1.0 + np.exp(-(dot - bias) * sharpness))
    return np.around(fraction * np.power(gamma, artist_plays), 2)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijective 64-bit mixer (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def counter_uniform(key: int, session, step) -> np.ndarray:
    """Uniform [0, 1) draw that is a pure function of (key, session, step).

    Counter-based, like Philox: a session's draws do not depend on which other sessions
    share its batch, so two policies run with one key see the very same draws (common
    random numbers) and the reference loop reproduces the vectorised simulator exactly.
    """
    session = np.asarray(session, dtype=np.uint64)
    step = np.asarray(step, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = _splitmix64(np.uint64(key) + session * _GOLDEN)
        x = _splitmix64(x + step * _STEP_MIX)
    return (x >> np.uint64(11)).astype(np.float64) * _TWO_POW_MINUS_53
