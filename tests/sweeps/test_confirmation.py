"""Issue 11: the baseline is trial 0, the best configurations are trained again on fresh seeds as trials of the
sibling study `<study>.confirm`, and the answer is the best mean over seeds, said against the baseline's."""
from collections import Counter

import pytest
import yaml
from optuna.trial import TrialState

from sweeplab.names import CONFIRMS_ATTR, RESULTS_FILE, ROLE_ATTR, SEED_ATTR
from tests.helpers import wait_for

N_SEARCH, TOP_K, SEEDS = 5, 2, 2
CONFIRM = (f"hydra.sweeper.n_trials={N_SEARCH}", f"hydra.sweeper.confirm.top_k={TOP_K}",
           f"hydra.sweeper.confirm.seeds={SEEDS}")
BASELINE = {"batch_size": 128, "optimizer.lr": 1e-3}  # the notes' settings: what `python train.py` runs


@pytest.fixture(scope="module")
def confirmed(new_sweep):
    space = new_sweep("confirmed")
    code, out, err = space.run(*CONFIRM)
    assert code == 0, err[-3000:]
    space.stdout = out
    return space


def roles(study) -> Counter:
    return Counter(t.user_attrs.get(ROLE_ATTR) for t in study.trials)


def expected_sources(study) -> set[int]:
    search = [t for t in study.trials if t.state == TrialState.COMPLETE]
    top = {t.number for t in sorted(search, key=lambda t: -t.value)[:TOP_K]}
    return top | {0}


def test_the_baseline_is_trial_0(confirmed):
    study = confirmed.study()
    assert study.trials[0].params == BASELINE and study.trials[0].user_attrs[ROLE_ATTR] == "baseline"
    assert roles(study)["baseline"] == 1


def test_confirmation_adds_top_k_times_seeds_and_the_baselines(confirmed):
    study = confirmed.study()
    sources = expected_sources(study)
    confirm = confirmed.confirm_study().trials
    assert len(study.trials) == N_SEARCH and roles(study) == {"baseline": 1, "search": N_SEARCH - 1}
    assert len(confirm) == SEEDS * len(sources) and roles(confirmed.confirm_study()) == {"confirm": len(confirm)}
    assert {t.user_attrs[CONFIRMS_ATTR] for t in confirm} == sources
    assert all(t.state == TrialState.COMPLETE for t in confirm)
    for trial in confirm:
        source = study.trials[trial.user_attrs[CONFIRMS_ATTR]]
        assert trial.params == source.params
        config = yaml.safe_load((confirmed.dir / f"confirm-{trial.number}" / ".hydra" / "config.yaml").read_text())
        assert config["seed"] == trial.user_attrs[SEED_ATTR] != 42  # fresh weights and batch order
        assert config["split_seed"] == 42  # the study's validation split
    assert len({(t.user_attrs[CONFIRMS_ATTR], t.user_attrs[SEED_ATTR]) for t in confirm}) == len(confirm)


def test_the_answer_is_the_best_mean_against_the_baseline(confirmed):
    study = confirmed.study()
    means = {}  # each confirmed configuration: its search trial's value and its fresh seeds'
    for trial in confirmed.confirm_study().trials:
        source = trial.user_attrs[CONFIRMS_ATTR]
        means.setdefault(source, [study.trials[source].value]).append(trial.value)
    best_source = max(means, key=lambda n: sum(means[n]) / len(means[n]))
    results = yaml.safe_load((confirmed.dir / RESULTS_FILE).read_text())
    assert results["best_trial"] == best_source and results["best_params"] == study.trials[best_source].params
    assert results["best_value"] == pytest.approx(sum(means[best_source]) / (1 + SEEDS))
    section = results["confirmed"]
    assert section["baseline"]["trial"] == 0 and section["baseline"]["mean"] == pytest.approx(sum(means[0]) / (1 + SEEDS))
    assert section["gain"] == pytest.approx(section["best"]["mean"] - section["baseline"]["mean"])
    assert section["best"]["test_accuracy_mean"] is not None
    assert "Verdict: " in confirmed.stdout and section["verdict"] in confirmed.stdout
    assert results["search_best"]["best_value"] == max(t.value for t in study.trials if t.state == TrialState.COMPLETE)
    assert results["search_best"]["best_trial"] == study.best_trial.number  # what optuna-dashboard shows as best


def test_one_parent_holds_every_trial_and_the_confirmation_table(confirmed):
    study = confirmed.study()
    (parent,) = confirmed.parents()
    children = confirmed.child_by_trial(parent.info.run_id)
    repeats = confirmed.child_by_trial(parent.info.run_id, confirmed.confirm_study().study_name)
    assert sorted(children) == [t.number for t in study.trials]
    assert sorted(repeats) == [t.number for t in confirmed.confirm_study().trials]
    assert len(confirmed.runs()) == 1 + len(children) + len(repeats)
    metrics = parent.data.metrics
    results = yaml.safe_load((confirmed.dir / RESULTS_FILE).read_text())["confirmed"]
    assert metrics["confirmed_mean"] == pytest.approx(results["best"]["mean"])
    assert metrics["baseline_mean"] == pytest.approx(results["baseline"]["mean"])
    assert metrics["gain"] == pytest.approx(results["gain"])
    artifacts = {f.path for f in confirmed.client().list_artifacts(parent.info.run_id)}
    assert "confirmation.json" in artifacts


def test_a_resume_repeats_neither_the_baseline_nor_the_confirmation(confirmed):
    before = len(confirmed.study().trials), len(confirmed.confirm_study().trials)
    code, out, err = confirmed.run(*CONFIRM)
    assert code == 0, err[-3000:]
    study = confirmed.study()
    assert (len(study.trials), len(confirmed.confirm_study().trials)) == before and roles(study)["baseline"] == 1


def test_two_workers_extending_a_study_share_one_baseline_and_one_confirmation(new_sweep):
    """A confirmed study of 2 trials, extended to 4 by two workers at once (issue 19): the new top-k is confirmed
    once, the first run's repeats are kept, no (configuration, seed) trains twice."""
    space = new_sweep("two-workers-confirm")
    overrides = ("hydra.sweeper.confirm.top_k=1", "hydra.sweeper.confirm.seeds=2")
    code, _, err = space.run("hydra.sweeper.n_trials=2", *overrides)
    assert code == 0, err[-3000:]
    workers = [space.start("hydra.sweeper.n_trials=4", *overrides) for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=600) == 0, (space.root / "started-sweep.log").read_text()[-3000:]
    study = space.study()
    confirm = space.confirm_study().trials
    sources = {t.user_attrs[CONFIRMS_ATTR] for t in confirm}
    assert roles(study)["baseline"] == 1 and study.trials[0].params == BASELINE
    assert len(confirm) == 2 * len(sources) and len(study.trials) == 4
    assert len({(tuple(sorted(t.params.items())), t.user_attrs[SEED_ATTR]) for t in confirm}) == len(confirm)
    assert all(t.state == TrialState.COMPLETE for t in study.trials + confirm)
    best = max(study.trials, key=lambda t: t.value)
    assert {best.number, 0} <= sources
    wait_for(lambda: len(space.parents()) == 1, 10, what="one parent run")


def test_a_baseline_outside_the_space_is_one_line_and_the_sweep_goes_on(new_sweep):
    space = new_sweep("no-baseline")
    code, out, err = space.run("hydra.sweeper.n_trials=2", "batch_size=choice(32,64)")
    assert code == 0, err[-3000:]
    assert "outside the search space: no baseline trial" in out + err
    assert roles(space.study())["baseline"] == 0
