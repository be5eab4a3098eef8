"""bench/multi_objective_samplers.py's simulator and hypervolume, and the front helpers it mirrors (cheap: no
training; the real sweeps of bench/multi_objective.py take minutes even with --quick, so the lead runs them)."""
import sys

import pytest

from sweeplab.sweep.pareto import dominates, spread
from tests.helpers import PROJECT_ROOT

BENCH = PROJECT_ROOT / "bench"
sys.path.insert(0, str(BENCH))
bench = pytest.importorskip("multi_objective_samplers")


def test_hypervolume_of_a_staircase():
    # (accuracy up, time down) against (0, 10): rectangles 1x(10-2) + (3-1)x(10-5) = 8 + 10.
    assert bench.hypervolume([(1, 2), (3, 5), (2, 6)], (0, 10)) == pytest.approx(18)
    assert bench.non_dominated([(1, 2), (3, 5), (2, 6)]) == [0, 1]
    assert bench.hypervolume([(-1, 2)], (0, 10)) == 0  # below the reference: nothing


def test_simulated_studies_stay_below_the_ideal_front():
    land = bench.Landscape(BENCH / "landscape-h200.jsonl.gz")
    points, told = bench.run_study(land, "random", 0, 0, 10, time_noise=0.05)
    assert points[0] == land.baseline and len(told) == 10
    grid = [(b, l) for b in range(6) for l in range(len(land.lrs))]
    truth = {p: (float(land.true[p]), bench.true_time(p[0])) for p in grid}
    reference = (truth[land.baseline][0] - 1, 40.0)
    ideal = bench.hypervolume(list(truth.values()), reference)
    assert 0 < bench.hypervolume([truth[p] for p in points], reference) <= ideal
    assert bench.true_time(0) > 10 * bench.true_time(5)  # batch 16 against 512: ~11x per epoch


def test_spread_keeps_both_ends_of_the_front():
    class Trial:
        def __init__(self, number):
            self.number, self.params = number, {"batch_size": number}

    front = [Trial(n) for n in range(7)]
    assert [t.number for t in spread(front, 3)] == [0, 3, 6]
    assert [t.number for t in spread(front, 2)] == [0, 6]
    assert len(spread(front, 10)) == 7
    assert dominates([1, 1], [1, 2], ["maximize", "minimize"]) and not dominates([1, 1], [1, 1], ["maximize"] * 2)


@pytest.mark.slow
def test_the_real_bench_runs_end_to_end_quick(tmp_path):
    """bench/multi_objective.py --quick: both sweeps, the table and the figure (a smoke run on digits, ~20 s), so
    the bench cannot silently break between the runs that fill docs/benchmarks.md."""
    import subprocess

    from tests.helpers import clean_env

    figure = tmp_path / "front.png"
    result = subprocess.run([sys.executable, str(BENCH / "multi_objective.py"), "--quick", "--out", str(figure)],
                            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| accuracy")]
    assert any("(baseline)" in row for row in rows) and rows[-1].startswith("| accuracy (one objective)")
    assert "hypervolume" in result.stdout and figure.stat().st_size > 0
