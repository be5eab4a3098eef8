"""A large study in populations (200 trials, killed in the middle and resumed): it keeps the sampler's coverage —
each trial trains the batch size the sampler proposed for it, in a stack with the others of that batch size — and
resumes to its total of trained trials (those that only waited in the pool are replaced) with every trial recorded. And a sweep stopped by failures fails the trials left in its pool."""
import signal
from collections import Counter

import pytest
import yaml
from optuna.trial import TrialState

from sweeplab.names import FAIL_REASON_ATTR, OUTPUT_DIR_ATTR, RECOVERED_ATTR, STATE_TAG
from sweeplab.sweep.study import started
from tests.helpers import job_link, kill_group, wait_for

pytestmark = pytest.mark.slow

BATCH_SIZES = {16, 32, 64, 128, 256, 512}  # the default search space's


def population_jobs(space) -> dict[str, list[int]]:
    return {f.name: [m["number"] for m in job_link(f)["population"]] for f in space.dir.glob("population-*")}


def trained_batch_size(space, number: int) -> int:
    return yaml.safe_load((space.dir / str(number) / ".hydra" / "config.yaml").read_text())["batch_size"]


def completed(space) -> int:
    if not space.journal.exists():
        return 0
    try:
        trials = space.study().get_trials(deepcopy=False)
    except ValueError:  # the journal holds no study yet
        return 0
    return sum(t.state == TrialState.COMPLETE for t in trials)


@pytest.fixture(scope="module")
def large(new_sweep):
    """200 trials in populations of 8, one epoch each, killed once 70 of them completed, then resumed."""
    space = new_sweep("population-large")
    args = ("hydra.sweeper.population=8", "hydra.sweeper.n_trials=200", "epochs=1",
            "hydra.sweeper.confirm.top_k=1", "hydra.sweeper.confirm.seeds=1",
            "hydra.sweeper.sampler.gp_trials=20")  # the GP's asks cost most at this size: TPE from trial 20
    process = space.start(*args)
    try:
        wait_for(lambda: completed(space) >= 70, timeout=400, interval=2, what="70 trials to complete")
    finally:
        kill_group(process)
    assert process.wait() == -signal.SIGKILL
    interrupted = space.study().get_trials()
    code, out, err = space.run(*args)
    assert code == 0, err[-3000:]
    return space, interrupted, out


def test_a_large_study_resumes_to_its_total(large):
    space, interrupted, _ = large
    running = {t.number for t in interrupted if t.state == TrialState.RUNNING}
    assert running  # trials that were training, or waiting in the pool for their population
    search = space.study().get_trials()
    confirming = space.confirm_study().get_trials()
    # Trials that waited in the pool when the sweep was killed trained nothing: new trials took their places.
    waited = [t.number for t in search if t.number in running and OUTPUT_DIR_ATTR not in t.user_attrs]
    assert started(space.study()) == 200 and len(search) == 200 + len(waited)
    assert confirming and {t.user_attrs.get("sweeplab.role") for t in confirming} == {"confirm"}
    for t in search:
        if t.number in running and RECOVERED_ATTR not in t.user_attrs:
            assert t.state == TrialState.FAIL and t.user_attrs[FAIL_REASON_ATTR] == "its worker process died"
        else:  # a trial whose job had ended its run before the kill is COMPLETE with the run's result
            assert t.state == TrialState.COMPLETE
    trained = {t.params["batch_size"] for t in search if t.state == TrialState.COMPLETE}
    assert trained == BATCH_SIZES  # every batch size of the space ran


def test_every_trial_of_a_large_study_has_its_run_and_folder(large):
    space, _, _ = large
    trials = space.study().get_trials()
    (parent,) = space.parents()
    runs = space.child_by_trial(parent.info.run_id)
    assert sorted(runs) == [t.number for t in trials]
    for trial in trials:
        run = runs[trial.number]
        assert run.data.tags[STATE_TAG] == trial.state.name
        if trial.state == TrialState.COMPLETE:
            assert run.info.status == "FINISHED"
            assert run.data.metrics["best_val_accuracy"] == pytest.approx(trial.value)
            assert trained_batch_size(space, trial.number) == trial.params["batch_size"]
        else:
            assert run.info.status == "FAILED"


def test_trials_left_in_the_pool_fail_when_the_sweep_stops(new_sweep):
    """Too many failures stop the sweep: the trials still waiting for their population end FAIL, with a reason and
    a FAILED run, instead of staying RUNNING."""
    space = new_sweep("population-stopped")
    code, _, err = space.run("hydra.sweeper.population=4", "hydra.sweeper.n_trials=12", "epochs=1", "optimizer=sgd",
                             # every loss diverges
                             "hydra.sweeper.params={batch_size:'choice(16,32,64,128,256,512)',"
                             "optimizer.lr:'interval(1e29, 1e30)'}",
                             "hydra.sweeper.max_failure_rate=0", "hydra/sweeper/sampler=random")
    assert code == 1 and "trials failed, more than max_failure_rate=" in err
    trials = space.study().get_trials()
    assert {t.state for t in trials} == {TrialState.FAIL}
    drained = [t for t in trials if "before its population ran" in t.user_attrs[FAIL_REASON_ATTR]]
    assert drained and all(not (space.dir / str(t.number)).exists() for t in drained)
    (parent,) = space.parents()
    runs = space.child_by_trial(parent.info.run_id)
    assert sorted(runs) == [t.number for t in trials] and {r.info.status for r in runs.values()} == {"FAILED"}


def test_a_large_study_trains_the_batch_sizes_the_sampler_asks_for(large):
    """Before, a population pinned every member to its first member's batch size, and a study in populations covered
    few batch sizes. Now every trial trains its own proposal, in a stack with the others of its batch size."""
    space, _, _ = large
    trials = space.study().get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert Counter(trained_batch_size(space, t.number) for t in complete) == Counter(
        t.params["batch_size"] for t in complete)
    jobs = population_jobs(space)
    in_jobs = [n for members in jobs.values() for n in members]
    assert len(in_jobs) == len(set(in_jobs))  # no trial in two jobs
    for members in jobs.values():
        assert len({trials[n].params["batch_size"] for n in members}) == 1 and 2 <= len(members) <= 8
    assert max(len(members) for members in jobs.values()) == 8  # full populations where the sampler insists
