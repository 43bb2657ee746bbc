"""Draws for generation: one at a time for live orders, in batches for the generated history.

One at a time (`Weighted`, `pick`, `randint`): the same results as `random.Random.choices(...)[0]` and
`randint`, without their per-call overhead (`choices` accumulates the weights on every call).

In batches (`batch_rng`, `pick_many`, `distinct_picks`, `sequential_ids`): numpy draws a whole channel's history
at once. A batch generator is seeded from a key (the world's seed and what it draws for), so each part of the world
has its own reproducible stream. numpy's Generator is pinned by uv.lock; a numpy upgrade may change the world a
seed makes (the determinism tests compare two worlds made by the same code, not a stored world).
"""

from __future__ import annotations

import itertools
import random
from bisect import bisect
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar("T")


def pick(rng: random.Random, population: Sequence[T], cum_weights: Sequence[float]) -> T:
    """`rng.choices(population, cum_weights=cum_weights)[0]`, the same draw without its per-call overhead."""
    return population[bisect(cum_weights, rng.random() * (cum_weights[-1] + 0.0), 0, len(population) - 1)]


class Weighted(Generic[T]):
    """A population with its weights accumulated once."""

    def __init__(self, population: Sequence[T], weights: Sequence[Any]):
        if len(population) != len(weights):
            raise ValueError("population and weights differ in length")
        self.population = tuple(population)
        self.cum_weights = tuple(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> T:
        return pick(rng, self.population, self.cum_weights)

    def indexes(self, gen: np.random.Generator, n: int) -> np.ndarray:
        """`n` weighted draws, as indexes into `population`."""
        return pick_many(gen, np.asarray(self.cum_weights, dtype=np.float64), n)

    def values(self, gen: np.random.Generator, n: int) -> np.ndarray:
        """`n` weighted draws of a numeric population, as an array."""
        return np.asarray(self.population)[self.indexes(gen, n)]


def randint(rng: random.Random, a: int, b: int) -> int:
    """`rng.randint(a, b)`, the same number: `randint` → `randrange` → `_randbelow` is three Python calls and
    argument checks per draw, and generation makes millions of draws."""
    return a + rng._randbelow(b - a + 1)


# ------------------------------------------------------------------------------------------------ in batches
def batch_rng(*key: Any) -> np.random.Generator:
    """A numpy generator seeded from `key` (e.g. seed, "rakuten", "history"): the same key, the same stream."""
    return np.random.default_rng(random.Random(":".join(map(str, key))).getrandbits(128))


def cumulative(weights: Sequence[float]) -> np.ndarray:
    return np.cumsum(np.asarray(weights, dtype=np.float64))


def pick_many(gen: np.random.Generator, cum_weights: np.ndarray, n: int) -> np.ndarray:
    """`n` weighted draws of indexes into the population whose weights accumulate to `cum_weights` (the bisect
    `pick` does, on a batch)."""
    drawn = np.searchsorted(cum_weights, gen.random(n) * cum_weights[-1], side="right")
    return np.minimum(drawn, len(cum_weights) - 1)


def distinct_picks(gen: np.random.Generator, cum_weights: np.ndarray, counts: np.ndarray,
                   tries: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Up to `counts[i]` distinct weighted picks for each row i, as a shopper adds items to a basket: at most
    `counts[i] * tries` draws, a repeat skipped. Returns (row, item) per pick, rows ascending, each row's picks in
    the order they were drawn."""
    n, most = len(counts), int(counts.max(initial=0))
    picks = np.full((n, max(most, 1)), -1, dtype=np.int64)
    got = np.zeros(n, dtype=np.int64)
    for draw in range(most * tries):
        rows = np.flatnonzero((got < counts) & (draw < counts * tries))  # only baskets still filling draw again
        if len(rows) == 0:
            break
        candidate = pick_many(gen, cum_weights, len(rows))
        fresh = ~(picks[rows] == candidate[:, None]).any(axis=1)
        rows, candidate = rows[fresh], candidate[fresh]
        picks[rows, got[rows]] = candidate
        got[rows] += 1
    rows, slots = np.nonzero(picks >= 0)
    return rows, picks[rows, slots]


def sequential_ids(gen: np.random.Generator, after: int | None, start: int, max_gap: int, n: int) -> np.ndarray:
    """`n` growing ids with random gaps of 1..max_gap, continuing from `after` (the last id given) or, for the
    first ids of their kind, from `start` plus up to 10,000 (how `World._next_id` numbers one at a time)."""
    first = start + int(gen.integers(0, 10_001)) if after is None else after + int(gen.integers(1, max_gap + 1))
    gaps = gen.integers(1, max_gap + 1, n)
    gaps[0] = 0
    return first + np.cumsum(gaps)
