"""bench/trial_overhead.py at a tiny size: a real sweep whose per-trial breakdown has every section (the timings
themselves stay in the bench)."""
import json
import subprocess
import sys

import pytest

from tests.helpers import PROJECT_ROOT, clean_env

pytestmark = pytest.mark.slow
SECTIONS = {"sampler", "launch", "setup", "tracking", "optuna", "epochs", "evaluation", "checkpoint", "job-other",
            "fixed"}


def test_the_bench_breaks_a_trial_down_into_its_sections(tmp_path):
    out = tmp_path / "overhead.json"
    result = subprocess.run([sys.executable, "bench/trial_overhead.py", "--trials", "3", "--json", str(out)],
                            cwd=PROJECT_ROOT, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = json.loads(out.read_text())["this tree"]
    sections = sweep["sections"]
    assert SECTIONS <= set(sections) and {f"cpu.{s}" for s in SECTIONS - {"fixed", "epochs"}} <= set(sections)
    assert all(sections[s] > 0 for s in ("sampler", "launch", "setup", "tracking", "epochs", "evaluation"))
    assert sweep["overhead_s"] > 0 and sweep["wall_s"] > sections["epochs_total"] > 0
    assert sections["total.tracking"] >= 2 * sections["tracking"] > 0  # the whole sweep's sum beside the mean
    assert sweep["mlflow_db_bytes"] > 0 and sweep["journal_bytes"] > 0 and sweep["mlruns_bytes"] > 0
    assert "overhead (wall minus epochs) per trial" in result.stdout and "store per trial" in result.stdout
