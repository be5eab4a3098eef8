"""Launchers and the other sweeper: the joblib launcher runs an Optuna study's trials in parallel processes that
share the cores, and `train.py -m key=a,b` without hydra/sweeper=optuna stays Hydra's plain grid, with nothing of
the Optuna sweep leaking into it."""
import json
import re
import subprocess
import sys

import pytest
import yaml
from pathlib import Path

from optuna.trial import TrialState

from sweeplab.settings import cpu_count

from tests.helpers import PROJECT_ROOT, clean_env
from sweeplab.names import JOURNAL_FILE, KIND_TAG, RESULTS_FILE

pytestmark = pytest.mark.slow


def test_joblib_launcher_runs_parallel_trials(new_sweep):
    space = new_sweep("joblib")
    # threads left at its default (0 = all cores): the sweeper must split the cores between the 2 parallel trials
    # The official custom_search_space hook rides along: it adds model.width to the space in the sweeping process.
    code, out, err = space.run(
        "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=2",
        "hydra.sweeper.custom_search_space=tests.sweeps.search_spaces.width", without=("threads",),
    )
    assert code == 0, err[-3000:]
    assert "Joblib.Parallel" in out  # the joblib launcher ran the jobs, not the basic one
    study = space.study()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    expected_threads = max(1, cpu_count() // 2)
    dirs = space.job_dirs()
    assert [d.name for d in dirs] == ["0", "1"]
    for folder in dirs:
        overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
        assert [o for o in overrides if o.startswith("threads=")] == [f"threads={expected_threads}"]
        config = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())
        assert config["threads"] == expected_threads
        trial = study.trials[int(folder.name)]
        assert set(trial.params) == {"batch_size", "optimizer.lr", "model.width"}
        assert config["model"]["width"] == trial.params["model.width"]
    (parent,) = space.parents()
    children = space.child_by_trial(parent.info.run_id)
    assert sorted(children) == [0, 1]
    assert len(space.runs()) == 3
    assert all(c.info.status == "FINISHED" for c in children.values())
    assert parent.data.metrics["trials_complete"] == 2


def test_a_slow_trial_does_not_hold_up_the_other_slot(new_sweep):
    """Each of the n_jobs slots asks for its next trial as soon as its last one ends: while trial 0 trains for 400
    epochs, the other slot runs trials 1, 2 and 3 (run in batches of two, trials 2 and 3 would wait for trial 0)."""
    space = new_sweep("joblib-slots")
    code, out, err = space.run(
        "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4",
        "hydra.sweeper.custom_search_space=tests.sweeps.search_spaces.slow_first_trial", without=("epochs",),
    )
    assert code == 0, err[-3000:]
    trials = space.study().trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert [t.params["epochs"] for t in trials] == [400, 1, 1, 1]
    assert trials[3].datetime_start < trials[0].datetime_complete, [(t.datetime_start, t.datetime_complete)
                                                                     for t in trials]
    assert [d.name for d in space.job_dirs()] == ["0", "1", "2", "3"]


def test_basic_sweeper_grid_is_unaffected(new_sweep):
    space = new_sweep("basic")
    code, out, err = space.run("batch_size=32,64", "epochs=1", optuna_sweeper=False)
    assert code == 0, err[-3000:]
    assert not (space.dir / JOURNAL_FILE).exists()
    assert not (space.dir / RESULTS_FILE).exists()
    dirs = space.job_dirs()
    assert [d.name for d in dirs] == ["0", "1"]
    configs = [yaml.safe_load((d / ".hydra" / "config.yaml").read_text()) for d in dirs]
    assert [c["batch_size"] for c in configs] == [32, 64]
    assert all(c["epochs"] == 1 for c in configs)
    assert not any("trial" in c for c in configs)
    hydra_cfg = yaml.safe_load((dirs[0] / ".hydra" / "hydra.yaml").read_text())["hydra"]
    assert hydra_cfg["sweeper"]["_target_"].endswith("BasicSweeper")
    (parent,) = [r for r in space.runs() if r.data.tags.get(KIND_TAG) == "grid"]  # issue 11: one parent
    runs = space.children(parent.info.run_id)
    assert len(space.runs()) == 1 + len(runs) and parent.info.status == "FINISHED"
    assert sorted(r.data.params["batch_size"] for r in runs) == ["32", "64"]
    for run in runs:  # plain runs under the grid's parent: no Optuna tags
        assert run.info.status == "FINISHED"
        assert not {k for k in run.data.tags if k.startswith(("optuna.", KIND_TAG))}
    table = json.loads(Path(space.client().download_artifacts(parent.info.run_id, "grid.json")).read_text())
    rows = [dict(zip(table["columns"], row)) for row in table["data"]]
    assert sorted(r["batch_size"] for r in rows) == ["32", "64"] and parent.data.params["grid.batch_size"] == "32,64"
    assert "Study " not in out and "optimization_results" not in out  # no Optuna summary


def cfg(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "train.py", *args], cwd=PROJECT_ROOT, env=clean_env(), capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_basic_sweeper_config_has_no_optuna_keys():
    sweeper = yaml.safe_load(cfg("--cfg", "hydra", "-p", "hydra.sweeper"))
    assert sweeper == {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                       "max_batch_size": None, "params": None}
    # a grid sweep gets a new timestamped folder each time; an Optuna study keeps one folder named after it
    basic_dir = yaml.safe_load(cfg("--cfg", "hydra", "--resolve", "-p", "hydra.sweep.dir"))
    assert re.search(r"/multirun/\d{4}-\d{2}-\d{2}/\d{2}-\d{2}-\d{2}$", basic_dir), basic_dir
    optuna_dir = yaml.safe_load(cfg("--cfg", "hydra", "--resolve", "-p", "hydra.sweep.dir", "hydra/sweeper=optuna"))
    assert re.search(r"/multirun/mnist-ffn256-adam-10ep-[0-9a-f]{6}$", optuna_dir), optuna_dir
    # the whole hydra node resolves too, although the study name is built from the job's keys
    hydra_node = yaml.safe_load(cfg("--cfg", "hydra", "--resolve", "hydra/sweeper=optuna", "epochs=3"))
    name = hydra_node["sweeper"]["study_name"]
    assert re.fullmatch(r"mnist-ffn256-adam-3ep-[0-9a-f]{6}", name), name
    assert hydra_node["sweep"]["dir"].endswith(f"/multirun/{name}")
    # another setting that changes the objective asks another question: another study (and folder)
    assert yaml.safe_load(cfg("--cfg", "hydra", "--resolve", "-p", "hydra.sweeper.study_name", "hydra/sweeper=optuna",
                              "epochs=3", "val_size=200")) != name


def test_job_folders_stay_in_the_study_folder_when_its_name_depends_on_a_searched_key(new_sweep):
    """The default study name (and so the sweep folder) is built from model.width; a trial with another width must
    still write its job folder into the study's folder, beside the journal."""
    space = new_sweep("searched-name")
    code, _, err = space.run(
        "hydra.sweeper.n_trials=3", "model.width=choice(16,32)",
        f"hydra.sweep.dir={space.root}/runs/${{hydra.sweeper.study_name}}",
    )
    assert code == 0, err[-3000:]
    (study_dir,) = (space.root / "runs").iterdir()
    assert re.fullmatch(r"digits-ffn256-adam-2ep-[0-9a-f]{6}", study_dir.name)  # resolved in the sweeping process
    assert sorted(p.name for p in study_dir.iterdir()) == ["0", "1", "2", RESULTS_FILE,
                                                           JOURNAL_FILE, "plots"]
