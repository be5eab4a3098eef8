"""The out-of-the-box sweep: its default search space, an extra key from the command line, what it writes
(optimization_results.yaml as the official plugin does) and how it is tracked in MLflow (one parent, a child per
trial). One tiny real sweep is shared by the tests of this module."""
import math
import re
import subprocess
import sys

import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from tests.helpers import PROJECT_ROOT, clean_env
from sweeplab.names import MODEL_TRIAL_TAG, PARENT_RUN_ATTR, RESULTS_FILE, RUN_ID_ATTR, STATE_TAG, WEIGHTS_FILE
from tests.helpers import job_link

pytestmark = pytest.mark.slow

# The default name: <dataset>-<model>-<optimizer>-<epochs>ep-<hash of the question>, the groups' choices first.
DEFAULT_NAME = re.compile(r"digits-ffn256-adam-2ep-[0-9a-f]{6}")
N_TRIALS = 3
POWERS_OF_TWO = [16, 32, 64, 128, 256, 512]


def cfg_hydra(*overrides: str) -> dict:
    result = subprocess.run(
        [sys.executable, "train.py", "--cfg", "hydra", "--resolve", "-p", "hydra.sweeper", *overrides],
        cwd=PROJECT_ROOT, env=clean_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_default_search_space_in_config():
    sweeper = cfg_hydra("hydra/sweeper=optuna")
    assert sweeper["_target_"].endswith("SweeplabOptunaSweeper")
    assert sweeper["direction"] == "maximize"  # objective.direction's
    assert re.fullmatch(r"mnist-ffn256-adam-10ep-[0-9a-f]{6}", sweeper["study_name"]), sweeper["study_name"]
    assert cfg_hydra("hydra/sweeper=optuna", "objective.direction=minimize")["direction"] == "minimize"
    assert sweeper["n_trials"] == 25
    # GP while the study is small (issue 11: measured best), then TPE (issue 22: asks that stay cheap)
    assert sweeper["sampler"]["_target_"] == "sweeplab.sweep.scaling_sampler.GPThenTPESampler"
    assert sweeper["sampler"]["gp_trials"] == 50
    gp = cfg_hydra("hydra/sweeper=optuna", "hydra/sweeper/sampler=gp")["sampler"]  # one sampler throughout
    assert gp["_target_"] == "optuna.samplers.GPSampler"
    tpe = cfg_hydra("hydra/sweeper=optuna", "hydra/sweeper/sampler=tpe")["sampler"]  # for many parallel trials
    assert tpe["multivariate"] is True and tpe["constant_liar"] is True
    assert sweeper["params"]["batch_size"].replace(" ", "") == "choice(16,32,64,128,256,512)"
    assert sweeper["params"]["optimizer.lr"].replace(" ", "") == "tag(log,interval(1e-4,1e-1))"
    assert sweeper["pruner"]["_target_"] == "optuna.pruners.NopPruner"
    for key in ("storage", "study_name", "n_jobs", "max_failure_rate", "custom_search_space"):
        assert key in sweeper, f"official key {key} missing from hydra.sweeper"


@pytest.fixture(scope="module")
def sweep(new_sweep):
    space = new_sweep("default-sweep")
    code, out, err = space.run(f"hydra.sweeper.n_trials={N_TRIALS}", "model.width=choice(128,256)")
    assert code == 0, err[-3000:]
    space.stdout = out
    return space


def test_trials_sample_the_default_space(sweep):
    study = sweep.study()
    assert study.direction.name == "MAXIMIZE"
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * N_TRIALS
    for trial in study.trials:
        assert trial.params["batch_size"] in POWERS_OF_TWO
        assert 1e-4 <= trial.params["optimizer.lr"] <= 1e-1
        assert isinstance(trial.distributions["batch_size"], CategoricalDistribution)
        lr = trial.distributions["optimizer.lr"]
        assert isinstance(lr, FloatDistribution) and lr.log and (lr.low, lr.high) == (1e-4, 1e-1)
        assert 0 <= trial.value <= 1  # a validation accuracy
    assert type(study.sampler).__name__ == "TPESampler"


def test_optimization_results_match_best_trial(sweep):
    results = yaml.safe_load((sweep.dir / RESULTS_FILE).read_text())
    best = sweep.study().best_trial
    assert results["name"] == "optuna"
    assert results["best_value"] == best.value
    assert results["best_params"] == best.params
    assert f"{best.value:.4f}" in sweep.stdout  # the one-screen summary names the best value


def test_extra_search_key_and_pass_through_overrides(sweep):
    study = sweep.study()
    dirs = sweep.job_dirs()
    assert [d.name for d in dirs] == [str(t.number) for t in study.trials]
    for trial, folder in zip(study.trials, dirs):
        assert trial.params["model.width"] in (128, 256)
        config = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())
        assert config["epochs"] == 2 and config["dataset"]["name"] == "digits"
        assert config["model"]["width"] == trial.params["model.width"]
        assert config["batch_size"] == trial.params["batch_size"]
        assert math.isclose(config["optimizer"]["lr"], trial.params["optimizer.lr"], rel_tol=1e-12)
        assert "trial" not in config  # the sweep's plumbing stays out of the user's config ...
        assert job_link(folder)["trial_id"] == trial._trial_id  # ... in the job's environment
        assert len(trial.intermediate_values) == 2  # every epoch reported to the trial


def test_one_parent_run_with_a_child_per_trial(sweep):
    study = sweep.study()
    (parent,) = sweep.parents()
    assert study.user_attrs[PARENT_RUN_ATTR] == parent.info.run_id
    assert DEFAULT_NAME.fullmatch(study.study_name), study.study_name
    assert parent.info.run_name == f"study-{study.study_name}" and parent.info.status == "FINISHED"
    children = sweep.child_by_trial(parent.info.run_id)
    assert len(sweep.runs()) == 1 + N_TRIALS  # nothing outside the parent/child tree
    assert sorted(children) == [t.number for t in study.trials]
    for trial in study.trials:
        child = children[trial.number]
        tags = child.data.tags
        assert tags["optuna.study"] == study.study_name
        assert tags["optuna.sampler"] == "GPThenTPESampler"
        assert tags["seed"] == "42"
        assert tags[STATE_TAG] == "COMPLETE" and child.info.status == "FINISHED"
        assert trial.user_attrs[RUN_ID_ATTR] == child.info.run_id
        assert child.data.metrics["best_val_accuracy"] == pytest.approx(trial.value)
        assert child.data.params["batch_size"] == str(trial.params["batch_size"])
        # every epoch's curve point and intermediate value, the last one written with the results
        history = sweep.client().get_metric_history(child.info.run_id, "val_accuracy")
        assert sorted(m.step for m in history) == [1, 2]
        assert sorted(trial.intermediate_values) == [1, 2]
        assert trial.intermediate_values[2] == pytest.approx(trial.value)  # the best so far, here the trial's value


def test_parent_run_holds_the_study_summary(sweep):
    study = sweep.study()
    best = study.best_trial
    (parent,) = sweep.parents()
    metrics, tags, params = parent.data.metrics, parent.data.tags, parent.data.params
    assert metrics["trials_complete"] == N_TRIALS
    assert metrics["trials_pruned"] == 0 and metrics["trials_fail"] == 0
    assert metrics["best_val_accuracy"] == pytest.approx(best.value)
    assert metrics["epochs_trained"] == 2 * N_TRIALS
    assert tags["optuna.study"] == study.study_name
    assert tags["best_trial"] == str(best.number)
    assert tags["best_child_run_id"] == sweep.child_by_trial(parent.info.run_id)[best.number].info.run_id
    assert tags["best.batch_size"] == str(best.params["batch_size"])
    assert float(tags["best.optimizer.lr"]) == pytest.approx(best.params["optimizer.lr"])
    # the search space and sampler settings
    assert {"search.batch_size", "search.optimizer.lr", "search.model.width"} <= set(params)
    assert params["sampler"] == "GPThenTPESampler" and params["sampler.seed"] == "42"
    assert params["n_trials"] == str(N_TRIALS) and params["direction"] == "maximize"


def test_parent_run_artifacts_and_best_model(sweep):
    client = sweep.client()
    (parent,) = sweep.parents()
    run_id = parent.info.run_id
    assert RESULTS_FILE in {f.path for f in client.list_artifacts(run_id)}
    assert "report.html" in {f.path for f in client.list_artifacts(run_id)}
    models = client.search_logged_models([parent.info.experiment_id])
    from_parent = [m for m in models if m.source_run_id == run_id]
    assert len(from_parent) == 1, models  # the best trial's model only; trials keep weights as artifacts
    assert str(from_parent[0].status).endswith("READY")
    best = sweep.study().best_trial
    assert parent.data.tags[MODEL_TRIAL_TAG] == str(best.number)
    for child in sweep.children(run_id):
        assert WEIGHTS_FILE in {f.path for f in client.list_artifacts(child.info.run_id)}
