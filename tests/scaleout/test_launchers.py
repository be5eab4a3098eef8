"""Hydra's submitit launcher: the SLURM config a cluster user starts from, and submitit_local running a real sweep."""
import subprocess
import sys

import pytest
from optuna.trial import TrialState

from .conftest import PROJECT_ROOT, check_study

pytestmark = pytest.mark.slow


def test_slurm_launcher_config_composes_with_the_optuna_sweeper():
    result = subprocess.run(
        [sys.executable, "train.py", "hydra/sweeper=optuna", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
         "hydra.launcher.gpus_per_node=2", "--cfg", "hydra", "-p", "hydra.launcher"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = set(result.stdout.splitlines())
    assert "_target_: hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher" in lines
    # Ours over the plugin's defaults, and the command line over ours.
    assert {"partition: gpu", "gpus_per_node: 2", "timeout_min: 60", "cpus_per_task: 4", "mem_gb: 8"} <= lines, \
        result.stdout


def test_submitit_local_runs_an_optuna_sweep(study):
    """Each trial is a submitit job (its own process, pickled task), the sweep on the shared PostgreSQL study."""
    code, log = study.run("w0", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                          "hydra.sweeper.n_trials=2", "epochs=1")
    assert code == 0, log[-3000:]
    finished, _ = check_study(study, 2)
    assert [t.state for t in finished] == [TrialState.COMPLETE] * 2
    assert list((study.root / "w0" / ".submitit").iterdir()), "no submitit job folders"
