"""The baseline, and the confirmation after the search: the top_k configurations and the baseline, trained again on
fresh seeds as trials of the sibling study `<study>.confirm`, so that the answer is a mean over seeds, not a lucky
trial — and the search study stays pure for every Optuna tool (optuna-dashboard's Best Trial is the search's).

Confirmation trial number i runs job i of a list stored in the confirmation study. The list only grows: when the
search has grown (a larger n_trials) or a job was interrupted, the jobs that are missing for the current top_k are
appended, so a (configuration, seed) pair that ran or is running is never planned again. Every worker derives the
same list from the finished search, and Optuna hands out trial numbers atomically: no job runs twice.
"""
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

from sweeplab.names import CONFIRM_PLAN_ATTR, CONFIRMS_ATTR, FEASIBLE_ATTR, ROLE_ATTR, SEED_ATTR, TEST_ACCURACY_ATTR
from sweeplab.sweep import pareto
from sweeplab.sweep.study import confirm_study_of, role, search_trials, started, to_run_again

LIVE = (TrialState.RUNNING, TrialState.WAITING, TrialState.COMPLETE)


@dataclass(frozen=True)
class ConfirmJob:
    source: int  # the search trial whose configuration this job trains again
    params: dict
    seed: int

    @property
    def key(self) -> tuple:
        return _key(self.params), self.seed


def enqueue_baseline(study: optuna.Study, baseline: dict) -> None:
    """The configuration the job runs without a sweep, as a search trial the next ask takes."""
    study.enqueue_trial(baseline, user_attrs={ROLE_ATTR: "baseline"})


def baseline_owed(study: optuna.Study) -> bool:
    """Whether the study's baseline ended without a result of its own (interrupted, or its worker died) and none
    has replaced it: the caller enqueues it again, so that the verdict has its baseline (COMPLETE once, never
    twice)."""
    baselines = [t for t in study.get_trials(deepcopy=False) if role(t) == "baseline"]
    return bool(baselines) and all(to_run_again(t) for t in baselines)


def search_finished(study: optuna.Study, n_search: int) -> bool:
    if started(study) < n_search:
        return False
    return not any(t.state == TrialState.RUNNING or (t.state == TrialState.WAITING and role(t) == "baseline")
                   for t in search_trials(study))


def jobs(study: optuna.Study, confirm: optuna.Study, n_search: int, top_k: int, seeds: list[int],
         group_by: Callable[[dict], dict] | None = None) -> list[ConfirmJob] | None:
    """The confirmation jobs (confirmation trial number i runs job i), or None while search trials still run.
    Jobs missing for the current top_k (newly ranked configurations, interrupted jobs) are appended and stored.
    With ``group_by``, new jobs whose params give the same ``group_by(params)`` are planned next to each other
    (populations share them)."""
    if not search_finished(study, n_search):
        return None
    planned = [ConfirmJob(**job) for job in confirm.user_attrs.get(CONFIRM_PLAN_ATTR, [])]
    trials = confirm.get_trials(deepcopy=False)
    # Studies made before confirmation moved to its own study hold their repeats among the search's trials.
    covered = {job_of(t).key for t in study.get_trials(deepcopy=False) if role(t) == "confirm" and not to_run_again(t)}
    for number, job in enumerate(planned):
        trial = trials[number] if number < len(trials) else None
        if trial is None or not to_run_again(trial):
            covered.add(job_of(trial).key if trial is not None and SEED_ATTR in trial.user_attrs else job.key)
    missing = [ConfirmJob(t.number, dict(t.params), seed) for t in top_configurations(study, top_k)
               for seed in seeds if (_key(t.params), seed) not in covered]
    if group_by:
        missing.sort(key=lambda job: _key(group_by(job.params)))  # stable: the order within a group stays
    if missing:
        planned += missing
        confirm.set_user_attr(CONFIRM_PLAN_ATTR, [vars(job) for job in planned])
    return planned


def top_configurations(study: optuna.Study, top_k: int) -> list:
    """The best trial of each of the top_k distinct feasible configurations of the search (with several objectives:
    up to top_k points spanning its Pareto front), then the baseline if it is not among them."""
    complete = search_trials(study, (TrialState.COMPLETE,))
    if len(study.directions) > 1:
        chosen = pareto.spread(pareto.front(complete, study.directions), top_k)
    else:
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        ranked = sorted((t for t in complete if pareto.feasible(t)),
                        key=lambda t: (-t.value if maximize else t.value, t.number))
        chosen = []
        for trial in ranked:
            if _key(trial.params) not in {_key(t.params) for t in chosen} and len(chosen) < top_k:
                chosen.append(trial)
    seen = {_key(t.params) for t in chosen}
    baseline = next((t for t in complete if role(t) == "baseline"), None)
    if baseline and _key(baseline.params) not in seen:
        chosen.append(baseline)
    return chosen


def _key(params: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def job_of(trial) -> ConfirmJob:
    return ConfirmJob(trial.user_attrs[CONFIRMS_ATTR], dict(trial.params), trial.user_attrs[SEED_ATTR])


def marks(job: ConfirmJob) -> dict:
    """A confirmation trial's attributes: its role, the trial it repeats and its seed."""
    return {ROLE_ATTR: "confirm", CONFIRMS_ATTR: job.source, SEED_ATTR: job.seed}


class PinningSampler(BaseSampler):
    """A study's sampler, with values pinned per trial (``fixed``, filled in before the trial suggests them): for
    confirmation trials all of them, those of the configuration they repeat; for a population's later members, the
    values its stack shares (batch size, model), the sampler choosing the rest."""

    def __init__(self, sampler: BaseSampler):
        self.sampler = sampler
        self.fixed: dict[int, dict] = {}  # trial number -> params

    def infer_relative_search_space(self, study, trial):
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        params = self.sampler.sample_relative(study, trial, search_space)
        pinned = self.fixed.get(trial.number, {})
        return {**params, **{k: v for k, v in pinned.items() if k in params}}

    def sample_independent(self, study, trial, param_name, param_distribution):
        if param_name in self.fixed.get(trial.number, {}):
            return self.fixed[trial.number][param_name]
        return self.sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        self.sampler.before_trial(study, trial)

    def after_trial(self, study, trial, state, values):
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()


@dataclass(frozen=True)
class Estimate:
    """A configuration's objective over its seeds: the search trial's and the fresh confirmation seeds."""

    trial: int
    params: dict
    values: dict  # seed -> objective
    test_accuracy: dict  # seed -> test accuracy

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values.values())

    @property
    def se(self) -> float:
        return _se(list(self.values.values()))

    @property
    def test_mean(self) -> float | None:
        return statistics.fmean(self.test_accuracy.values()) if self.test_accuracy else None

    @property
    def test_se(self) -> float | None:
        return _se(list(self.test_accuracy.values())) if self.test_accuracy else None


@dataclass(frozen=True)
class Answer:
    best: Estimate
    baseline: Estimate | None
    table: list[Estimate]

    @property
    def gain(self) -> float | None:
        return None if self.baseline is None else self.best.mean - self.baseline.mean

    @property
    def gain_se(self) -> float | None:
        """Paired by seed: both configurations trained on the same fresh seeds."""
        if self.baseline is None:
            return None
        seeds = sorted(self.best.values.keys() & self.baseline.values.keys())
        return _se([self.best.values[s] - self.baseline.values[s] for s in seeds])

    @property
    def beyond_noise(self) -> bool:
        return self.gain is not None and self.gain_se is not None and abs(self.gain) > 2 * self.gain_se

    def verdict(self, direction: str) -> str:
        if self.baseline is None:
            return "no baseline to compare with (it lies outside the search space or failed)"
        if self.best.trial == self.baseline.trial:
            return "the baseline itself is the best configuration: the search found nothing better"
        better = self.gain > 0 if direction == "maximize" else self.gain < 0
        if self.beyond_noise and better:
            return f"gain {self.gain:+.4g} ± {self.gain_se:.2g} exceeds its noise (more than two standard errors)"
        return f"gain {self.gain:+.4g} ± {self.gain_se:.2g} is within its noise (not more than two standard errors)"


def answer(study: optuna.Study, study_seed: int, confirm: optuna.Study | None = None) -> Answer | None:
    """The confirmed best (best mean over its seeds: the search trial's own and the fresh ones) and the baseline, or
    None before any confirmation ran. ``study`` is the search study; its confirmation trials are in ``confirm``
    (by default its sibling `<study>.confirm`). Counting the search trial's value as one seed is never worse in the
    measured simulation (docs/benchmarks.md): the fresh seeds outweigh the luck that picked it."""
    if len(study.directions) > 1:
        return None  # several objectives: a confirmed front instead (sweeplab.sweep.pareto.confirmed_front)
    confirm = confirm if confirm is not None else confirm_study_of(study)
    repeats = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if role(t) == "confirm"]
    if confirm is not None:
        repeats += confirm.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    by_source: dict[int, dict] = {}
    infeasible = set()  # configurations that broke a constraint on some seed: shown, never the answer
    for trial in repeats:
        if trial.user_attrs.get(FEASIBLE_ATTR) is False:
            infeasible.add(trial.user_attrs[CONFIRMS_ATTR])
        entry = by_source.setdefault(trial.user_attrs[CONFIRMS_ATTR], {"values": {}, "test": {}})
        seed = trial.user_attrs[SEED_ATTR]
        entry["values"][seed] = trial.value
        if TEST_ACCURACY_ATTR in trial.user_attrs:
            entry["test"][seed] = trial.user_attrs[TEST_ACCURACY_ATTR]
    if not by_source:
        return None
    trials = study.get_trials(deepcopy=False)
    for number, entry in by_source.items():
        source = trials[number]
        if source.state == TrialState.COMPLETE:
            entry["values"][study_seed] = source.value
            if TEST_ACCURACY_ATTR in source.user_attrs:
                entry["test"][study_seed] = source.user_attrs[TEST_ACCURACY_ATTR]
    table = [Estimate(n, dict(trials[n].params), e["values"], e["test"]) for n, e in sorted(by_source.items())]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    candidates = [e for e in table if e.trial not in infeasible and pareto.feasible(trials[e.trial])]
    if not candidates:
        return None
    best = max(candidates, key=lambda e: e.mean) if maximize else min(candidates, key=lambda e: e.mean)
    baseline = next((e for e in table if role(trials[e.trial]) == "baseline"), None)
    return Answer(best, baseline, table)


def _se(values: list[float]) -> float:
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
