"""Weighted draws for generation hot loops: the same results as `random.Random.choices(...)[0]`, cheaper.

`choices(population, weights=w)[0]` accumulates the weights on every call and builds a list for one item; a
generator placing a million orders makes millions of such draws. `Weighted` accumulates once and `pick` does
exactly what `choices` does for k=1 (one `rng.random()`, the same bisect), so a seed still gives the same world.
"""

from __future__ import annotations

import itertools
import random
from bisect import bisect
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

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


def randint(rng: random.Random, a: int, b: int) -> int:
    """`rng.randint(a, b)`, the same number: `randint` → `randrange` → `_randbelow` is three Python calls and
    argument checks per draw, and generation makes millions of draws."""
    return a + rng._randbelow(b - a + 1)
