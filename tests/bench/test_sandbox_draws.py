"""sandbox.draw: the one-at-a-time draws give exactly the numbers `random.Random` gives (live orders keep their
draws); the batch draws of the history fill baskets, number ids and weight picks as the one-at-a-time path does
(the determinism tests in tests/sandbox cover the world as a whole)."""

import random
from collections import Counter

import numpy as np

from sandbox.draw import Weighted, batch_rng, cumulative, distinct_picks, pick, randint, sequential_ids


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


def test_distinct_picks_fill_each_basket_with_distinct_items_by_weight():
    gen = batch_rng(3, "test", "baskets")
    weights = [8.0, 4.0, 2.0, 1.0, 1.0]
    counts = np.array([1, 2, 3, 3, 4] * 2000)
    rows, items = distinct_picks(gen, cumulative(weights), counts)
    assert (np.diff(rows) >= 0).all(), "rows ascending"
    baskets: dict[int, list[int]] = {}
    for row, item in zip(rows.tolist(), items.tolist(), strict=True):
        baskets.setdefault(row, []).append(item)
    assert set(baskets) == set(range(len(counts))), "every basket got at least its first pick"
    assert all(len(b) == len(set(b)) <= counts[r] for r, b in baskets.items())
    # three draws per wanted item: a 4-item basket from 5 items mostly fills, seldom completely
    assert 0.5 < np.mean([len(baskets[r]) == 4 for r in range(4, len(counts), 5)]) < 1.0
    first = Counter(b[0] for b in baskets.values())
    assert abs(first[0] / len(baskets) - 8 / 16) < 0.03 and abs(first[2] / len(baskets) - 2 / 16) < 0.02


def test_sequential_ids_grow_by_gaps_of_one_to_max_gap_and_continue_a_sequence():
    gen = batch_rng(4, "test", "ids")
    first = sequential_ids(gen, None, 1_000, 40, 5000)
    assert 1_000 <= first[0] <= 11_000
    gaps = np.diff(first)
    assert gaps.min() >= 1 and gaps.max() <= 40 and len(set(gaps.tolist())) == 40
    more = sequential_ids(gen, int(first[-1]), 1_000, 40, 10)
    assert 1 <= more[0] - first[-1] <= 40


def test_a_batch_stream_is_fixed_by_its_key():
    assert (batch_rng(1, "shop", "history").random(5) == batch_rng(1, "shop", "history").random(5)).all()
    assert not (batch_rng(1, "shop", "history").random(5) == batch_rng(2, "shop", "history").random(5)).any()
    table = Weighted(["a", "b"], [1, 3])
    picks = table.indexes(batch_rng(1, "w"), 8000)
    assert abs(picks.mean() - 0.75) < 0.02
