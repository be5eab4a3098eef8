"""Populations (hydra.sweeper.population=K): the sweeper asks for K trials at a time that share a batch size, trains
them as one stacked model in one job, and records each as an ordinary trial: its own Optuna state and intermediate
values, MLflow child run, job folder, weights and config. Checked on what a sweep leaves behind."""
import re

import pytest
import yaml
from optuna.trial import TrialState

from sweeplab.checkpoint import WEIGHTS_FILE
from sweeplab.names import STATE_TAG
from tests.helpers import job_link, run_python

pytestmark = pytest.mark.slow

EPOCHS, K = 3, 4


def populations(space, confirming: bool = False) -> list[list[int]]:
    """The trial numbers of each population job (of the search, or of the confirmation study), read from the job's
    link to its trials."""
    prefix = "population-confirm-" if confirming else "population-"
    folders = [f for f in space.dir.glob(prefix + "*") if f.name.removeprefix(prefix).isdigit()]
    return [[m["number"] for m in job_link(folder)["population"]]
            for folder in sorted(folders, key=lambda f: int(f.name.removeprefix(prefix)))]


@pytest.fixture(scope="module")
def swept(new_sweep):
    space = new_sweep("population")
    args = (f"hydra.sweeper.population={K}", "hydra.sweeper.n_trials=8", f"epochs={EPOCHS}",
            "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.population_reserve=0",
            "hydra.sweeper.confirm.top_k=2", "hydra.sweeper.confirm.seeds=2")
    code, out, err = space.run(*args)
    assert code == 0, err[-3000:]
    return space, args, out


def test_trials_run_in_populations_that_share_the_batch_size(swept):
    space, _, _ = swept
    study = space.study()
    groups = populations(space)
    assert groups[:2] == [[0, 1, 2, 3], [4, 5, 6, 7]]  # the search: two populations of four
    trials = study.get_trials()
    for group in groups:
        assert len({trials[n].params["batch_size"] for n in group}) == 1
    for group in groups[:2]:
        assert len({trials[n].params["optimizer.lr"] for n in group}) == len(group)  # each its own lr
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    for trial in trials:  # each member reports every epoch it trained, as a trial of its own would
        epochs = EPOCHS if trial.state == TrialState.COMPLETE else len(trial.intermediate_values)
        assert list(trial.intermediate_values) == list(range(1, epochs + 1))
    assert len(trials) == 8 and {t.user_attrs["sweeplab.role"] for t in space.confirm_study().trials} == {"confirm"}


def test_confirmation_trials_that_share_a_batch_size_run_together(swept):
    space, _, _ = swept
    confirming = space.confirm_study().get_trials()
    assert 4 <= len(confirming) <= 6  # two configurations and the baseline, two seeds each
    by_batch = {}
    for t in confirming:
        by_batch.setdefault(t.params["batch_size"], []).append(t.number)
    jobs = populations(space, confirming=True)
    jobs += [[n] for n in (t.number for t in confirming) if not any(n in g for g in jobs)]  # trials run alone
    assert len(jobs) == sum(-(-len(numbers) // K) for numbers in by_batch.values())


def test_each_member_is_an_ordinary_trial_run_and_folder(swept):
    space, _, _ = swept
    study = space.study()
    (parent,) = space.parents()
    assert parent.data.params["population"] == str(K)
    runs = space.child_by_trial(parent.info.run_id)
    assert sorted(runs) == list(range(len(study.trials)))
    for trial in study.trials:
        run = runs[trial.number]
        folder = space.dir / str(trial.number)
        config = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())
        assert config["optimizer"]["lr"] == pytest.approx(trial.params["optimizer.lr"])
        assert config["batch_size"] == trial.params["batch_size"]
        assert float(run.data.params["optimizer.lr"]) == pytest.approx(trial.params["optimizer.lr"])
        history = space.client().get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in history] == list(trial.intermediate_values)
        assert [m.value for m in history] == pytest.approx(list(trial.intermediate_values.values()))
        if trial.state == TrialState.COMPLETE:
            assert run.info.status == "FINISHED" and run.data.tags[STATE_TAG] == "COMPLETE"
            assert run.data.metrics["best_val_accuracy"] == pytest.approx(trial.value)
            assert (folder / WEIGHTS_FILE).is_file()
            assert "test_accuracy" in run.data.metrics and "test_accuracy" in trial.user_attrs
        else:
            assert run.info.status == "KILLED" and run.data.tags[STATE_TAG] == "PRUNED"


def test_predict_reads_a_member_folder(swept):
    space, _, _ = swept
    firsts = {group[0] for group in populations(space)}
    member = next(t.number for t in space.study().trials if t.state == TrialState.COMPLETE and t.number not in firsts)
    result = run_python("-m", "sweeplab.predict", str(space.dir / str(member)), "--n", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[0].split() == ["index", "predicted", "true"]


def test_a_finished_population_sweep_resumes_without_new_trials(swept):
    space, args, _ = swept
    before = len(space.study().trials)
    code, _, err = space.run(*args)
    assert code == 0, err[-3000:]
    assert len(space.study().trials) == before


def test_reserves_fill_the_places_of_members_that_leave(new_sweep):
    """With a pruner, a population job takes as many reserve trials as members by default; each reserve steps into
    the stack when a member leaves, and is recorded like any other member."""
    space = new_sweep("population-reserve")
    code, out, err = space.run("hydra.sweeper.population=2", "hydra.sweeper.n_trials=6", f"epochs={EPOCHS}",
                               "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=1",
                               "hydra.sweeper.confirm.top_k=0")
    assert code == 0, err[-3000:]
    assert "with 2 reserve trials per job" in out + err
    assert populations(space) == [[0, 1, 2, 3], [4, 5]]
    links = [job_link(folder) for folder in sorted(space.dir.glob("population-*"))]
    assert {link["width"] for link in links} == {2}
    trials = space.study().get_trials()
    assert len(trials) == 6 and {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    for trial in trials:
        epochs = EPOCHS if trial.state == TrialState.COMPLETE else len(trial.intermediate_values)
        assert list(trial.intermediate_values) == list(range(1, epochs + 1))
        assert (space.dir / str(trial.number) / ".hydra" / "config.yaml").is_file()
    widths = [int(n) for n in re.findall(r"(\d+) members", (space.dir / "population-0" / "train.log").read_text())]
    assert max(widths) == 2  # never wider than the population: the reserves waited for places
    assert sum(widths) == sum(len(t.intermediate_values) for t in trials[:4])  # all four trained in that job
    (parent,) = space.parents()
    assert parent.data.params["population_reserve"] == "2"
    assert sorted(space.child_by_trial(parent.info.run_id)) == list(range(6))


def test_a_nan_member_fails_alone(new_sweep):
    space = new_sweep("population-nan")
    code, out, err = space.run(
        "hydra.sweeper.params=null", "hydra/sweeper/sampler=grid", "optimizer=sgd", "optimizer.lr=choice(0.05,1e30)",
        "hydra.sweeper.population=2",
    )
    assert code == 0, err[-3000:]
    assert populations(space) == [[0, 1]]
    by_lr = {t.params["optimizer.lr"]: t for t in space.study().trials}
    assert by_lr[0.05].state == TrialState.COMPLETE
    assert by_lr[1e30].state == TrialState.FAIL
    assert "training loss became nan" in by_lr[1e30].user_attrs["fail_reason"]
    (parent,) = space.parents()
    runs = space.child_by_trial(parent.info.run_id)
    assert runs[by_lr[0.05].number].info.status == "FINISHED"
    assert runs[by_lr[1e30].number].info.status == "FAILED"


def test_joblib_runs_one_population_per_slot(new_sweep):
    space = new_sweep("population-joblib")
    code, out, err = space.run("hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4",
                               "hydra.sweeper.population=2", without=("threads",))
    assert code == 0, err[-3000:]
    assert "Joblib.Parallel" in out
    assert sorted(map(sorted, populations(space))) == [[0, 1], [2, 3]]
    assert [t.state for t in space.study().trials] == [TrialState.COMPLETE] * 4


def test_a_model_it_cannot_stack_trains_its_members_one_at_a_time(new_sweep):
    space = new_sweep("population-unstackable")
    code, out, err = space.run("model._target_=tests.framework.user_models.BatchNormNet", "~model.width",
                               "hydra.sweeper.n_trials=2", "hydra.sweeper.population=2")
    assert code == 0, err[-3000:]
    assert "cannot be stacked" in out + err and "BatchNorm1d" in out + err
    assert populations(space) == [[0, 1]]
    study = space.study()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert study.trials[0].value != study.trials[1].value
    for trial in study.trials:
        assert (space.dir / str(trial.number) / WEIGHTS_FILE).is_file()
