"""bench/samplers.py's simulator on the stored landscape: a few random-sampler studies keep its invariants."""
import sys

import numpy as np
import pytest

from tests.helpers import PROJECT_ROOT

BENCH = PROJECT_ROOT / "bench"
sys.path.insert(0, str(BENCH))
oracle = pytest.importorskip("_landscape_oracle")


@pytest.fixture(scope="module")
def land():
    return oracle.Landscape(BENCH / "landscape-h200.jsonl.gz")


def test_the_oracle_matches_the_landscape(land):
    assert land.val.shape == (16, 6, 25)
    assert land.gain[land.baseline] == 0
    assert land.best_gain == pytest.approx(0.41, abs=0.005)  # README: batch 16, lr 5.6e-4
    assert land.snap(128, 1e-3) == land.baseline
    assert land.snap(16, 5.4e-4) == land.snap(16, 5.6e-4) != land.snap(16, 4.4e-4)


def test_random_studies_pick_grid_points_with_nonnegative_regret(land):
    for i in range(4):
        table, fresh = i, [s for s in range(16) if s != i][:3]
        points = oracle.run_study(land, "random", i, table, 12)
        assert points[0] == land.baseline  # the enqueued trial 0
        assert all(0 <= b < 6 and 0 <= lr < 25 for b, lr in points)
        searched = oracle.best_searched(land, points, table)
        assert land.val[table][searched] == max(land.val[table][p] for p in points)
        pick, cost = oracle.confirmed(land, points, table, fresh, top_k=3)
        assert pick in points and cost in (9, 12)  # the baseline is confirmed too, once
        for p in (searched, pick):
            assert land.best_gain - land.gain[p] >= 0
    assert oracle.run_study(land, "random", 7, 0, 12) != oracle.run_study(land, "random", 8, 0, 12)


def test_confirmation_keeps_the_baseline_when_nothing_beats_it(land):
    worst = np.unravel_index(land.gain.argmin(), land.gain.shape)
    pick, _ = oracle.confirmed(land, [land.baseline, worst], 0, list(range(1, 5)), top_k=2)
    assert pick == land.baseline
