"""What keeps a large study cheap and usable: each job's config composed once per choice of config groups (and still
the job's own), child runs found by the values that vary, and a parent run that holds nothing per trial."""
import pytest
import yaml

from sweeplab.names import KIND_TAG, PARENT_TAG

pytestmark = pytest.mark.slow
N_TRIALS = 8
SPACE = ("hydra.sweeper.params.batch_size='choice(16,64)'", "+hydra.sweeper.params.model='choice(ffn128,ffn256)'")


@pytest.fixture(scope="module")
def study_sweep(new_sweep):
    sweep = new_sweep("many")
    code, _out, err = sweep.run(*SPACE, "hydra/sweeper/sampler=tpe", f"hydra.sweeper.n_trials={N_TRIALS}", "epochs=1")
    assert code == 0, err[-3000:]
    sweep.log = _out + err
    return sweep


def test_each_job_keeps_its_own_config_when_compositions_are_reused(study_sweep):
    assert "search trials" in study_sweep.log and "composed in full" not in study_sweep.log  # reused, checked equal
    trials = study_sweep.study().get_trials(deepcopy=False)
    assert len(trials) == N_TRIALS and len({t.params["model"] for t in trials}) == 2  # both choices of the group
    for trial, folder in zip(trials, study_sweep.job_dirs(), strict=True):
        assert folder.name == str(trial.number)
        config = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())
        width = {"ffn128": 128, "ffn256": 256}[trial.params["model"]]
        assert (config["batch_size"], config["optimizer"]["lr"], config["model"]["width"]) == (
            trial.params["batch_size"], trial.params["optimizer.lr"], width)
        overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
        assert f"batch_size={trial.params['batch_size']}" in overrides and f"model={trial.params['model']}" in overrides
        hydra = yaml.safe_load((folder / ".hydra" / "hydra.yaml").read_text())["hydra"]
        assert (hydra["job"]["num"], hydra["runtime"]["output_dir"]) == (trial.number, str(folder))
        assert hydra["runtime"]["choices"]["model"] == trial.params["model"]
        assert f'"trial_id": {trial._trial_id}' in hydra["job"]["env_set"]["SWEEPLAB_TRIAL"]


def test_child_runs_are_found_by_the_values_that_vary(study_sweep):
    """docs/sweeps.md's search strings: params hold the values as text (=, !=, LIKE)."""
    client = study_sweep.client()
    (parent,) = study_sweep.parents()
    experiment = [parent.info.experiment_id]
    trials = study_sweep.study().get_trials(deepcopy=False)
    for batch_size in (16, 64):
        found = client.search_runs(experiment, f"tags.`{PARENT_TAG}` = '{parent.info.run_id}' and "
                                               f"params.batch_size = '{batch_size}'")
        assert sorted(int(r.data.tags["optuna.trial"]) for r in found) == \
            sorted(t.number for t in trials if t.params["batch_size"] == batch_size)
    trial = trials[-1]
    (found,) = client.search_runs(experiment, f"params.`optimizer.lr` = '{trial.params['optimizer.lr']}' and "
                                              f"params.`model._target_` LIKE '%FeedForward%'")
    assert found.data.tags["optuna.trial"] == str(trial.number)


def test_the_parent_run_holds_nothing_per_trial(study_sweep):
    """Its page stays as light at 1 000 trials as at 8: its params and metric histories do not grow with them."""
    client = study_sweep.client()
    (parent,) = study_sweep.parents()
    assert parent.data.tags[KIND_TAG] == "study"
    assert len(study_sweep.children(parent.info.run_id)) == N_TRIALS
    assert len(parent.data.params) < 30 and not any(key[-1].isdigit() for key in parent.data.params)
    for metric in parent.data.metrics:
        assert len(client.get_metric_history(parent.info.run_id, metric)) == 1  # one sweep: one snapshot
