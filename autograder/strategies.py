"""Hypothesis strategies for RL data, built from small pieces: a length, then
rewards of that length, then values of length + 1, then flags; and ``seeded``,
which builds a drawn case's objects (a policy, an expert) from its drawn seed."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

REWARD = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False, width=32)
GAMMA = st.one_of(st.sampled_from([0.0, 1.0, 0.5, 0.9, 0.99]), st.floats(0.0, 1.0))
LAMBDA = st.one_of(st.sampled_from([0.0, 1.0, 0.5, 0.95]), st.floats(0.0, 1.0))
DTYPE = st.sampled_from(["float32", "float64"])
FLOAT = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False, width=32)  # an observation's or an action's entry


def seeded(seed: int, build):
    """What ``build()`` returns when torch's global RNG is seeded with ``seed``; the RNG's state is kept."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def rewards(min_len: int = 1, max_len: int = 300) -> st.SearchStrategy[list[float]]:
    return st.lists(REWARD, min_size=min_len, max_size=max_len)


@st.composite
def episodes(draw, max_len: int = 300) -> dict:
    """One trajectory's rewards [T], values [T+1] and whether it terminated."""
    r = draw(rewards(1, max_len))
    v = draw(st.lists(REWARD, min_size=len(r) + 1, max_size=len(r) + 1))
    return {"rewards": r, "values": v, "terminated": draw(st.booleans())}


def long_rewards(length: int) -> list[float]:
    """A deterministic long reward sequence for explicit examples (T ≥ 1000)."""
    return [float((7 * i) % 11 - 5) / 2 for i in range(length)]


def long_episode(length: int, terminated: bool) -> dict:
    return {"rewards": long_rewards(length), "values": [float((3 * i) % 5) for i in range(length + 1)],
            "terminated": terminated}
