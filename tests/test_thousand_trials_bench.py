"""bench/thousand_trials.py at its CPU size (what CI runs where no GPU is lent): both studies run to their answer
and the table says what each did."""
import subprocess
import sys

import pytest

from tests.helpers import PROJECT_ROOT, clean_env

pytestmark = pytest.mark.slow


def test_the_small_thousand_trials_bench_prints_its_table(tmp_path):
    result = subprocess.run(
        [sys.executable, "thousand_trials.py", "--small", "--trials", "16", "--alone", "2", "--workdir", str(tmp_path)],
        cwd=PROJECT_ROOT / "bench", env=clean_env(), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "### 16 trials, digits, 1 epochs, on cpu" in lines
    rows = [line.split("|")[1:-1] for line in lines if line.startswith("| 16 in") or line.startswith("| 2 one")]
    assert [row[0].strip() for row in rows] == ["16 in populations (8, 1 at once)", "2 one at a time"]
    for row, search in zip(rows, (16, 2)):
        trials, wall, per_minute = int(row[1]), float(row[2]), int(row[3])
        assert trials > search  # the search, then its confirmation
        assert wall > 0  # printed to 0.1 s; trials per minute come from the unrounded wall time
        assert round(60 * trials / (wall + 0.05)) <= per_minute <= round(60 * trials / max(wall - 0.05, 1e-3))
        assert "batch_size=" in row[5] and row[6].strip().endswith("%") and row[7].strip().endswith("pp")
    assert lines[-1].startswith("confirmed answers differ by ")
    assert (tmp_path / "thousand" / "optuna.journal").is_file() and (tmp_path / "one-at-a-time").is_dir()
