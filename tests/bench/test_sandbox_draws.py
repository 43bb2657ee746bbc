"""sandbox.draw: the faster draws that generation uses give exactly the numbers `random.Random` gives, so a seed
still makes the same world (the determinism tests in tests/sandbox cover the world as a whole)."""

import random

from sandbox.draw import Weighted, pick, randint


def test_pick_and_weighted_draw_what_choices_draws():
    population = ["a", "b", "c", "d"]
    weights = [0.5, 3, 1.25, 0.01]
    table = Weighted(population, weights)
    ours, theirs = random.Random(42), random.Random(42)
    for _ in range(2000):
        assert table.pick(ours) == theirs.choices(population, weights=weights)[0]
        cum = [1.0, 1.5, 9.0, 9.25]
        assert pick(ours, population, cum) == theirs.choices(population, cum_weights=cum)[0]
    assert ours.random() == theirs.random()  # both consumed the same number of draws


def test_randint_draws_what_randint_draws():
    ours, theirs = random.Random(7), random.Random(7)
    for low, high in [(0, 0), (1, 5), (0, 9_999_999), (-3, 3), (1950, 2005), (0, 2**40)]:
        for _ in range(500):
            assert randint(ours, low, high) == theirs.randint(low, high)
    assert ours.random() == theirs.random()


def test_weighted_refuses_mismatched_lengths():
    try:
        Weighted([1, 2], [1])
    except ValueError as exc:
        assert "differ" in str(exc)
    else:
        raise AssertionError("mismatched population and weights were accepted")
