"""The baseline as trial 0, and the confirmation runs after the search: the top_k configurations and the baseline,
trained again on fresh seeds as trials of the same study, so that the answer is a mean over seeds, not a lucky trial.

Confirmation trials are the study's trials numbered n_trials and up: trial n_trials + i runs job i of a list that
every worker derives alike from the finished search, so two workers never run the same job and a resume never
repeats one (Optuna hands out trial numbers atomically).
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


@dataclass(frozen=True)
class ConfirmJob:
    source: int  # the search trial whose configuration this job trains again
    params: dict
    seed: int


def enqueue_baseline(study: optuna.Study, baseline: dict) -> None:
    """The configuration the job runs without a sweep, as the study's first trial (only its creator calls this)."""
    study.enqueue_trial(baseline, user_attrs={ROLE_ATTR: "baseline"})


def jobs(study: optuna.Study, n_search: int, top_k: int, seeds: list[int],
         group_by: Callable[[dict], dict] | None = None) -> list[ConfirmJob] | None:
    """The confirmation jobs, or None while search trials still run. The first worker to find the search finished
    stores the list in the study; every later worker and resume reads it from there. With ``group_by``, jobs
    whose params give the same ``group_by(params)`` are planned next to each other (populations share them)."""
    stored = study.user_attrs.get(CONFIRM_PLAN_ATTR)
    if stored is not None:
        return [ConfirmJob(**job) for job in stored]
    search = [t for t in study.get_trials(deepcopy=False) if t.number < n_search]
    if len(search) < n_search or any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in search):
        return None
    chosen = _top_configurations(study, search, top_k)
    planned = [ConfirmJob(t.number, dict(t.params), seed) for t in chosen for seed in seeds]
    if group_by:
        planned.sort(key=lambda job: _key(group_by(job.params)))  # stable: the order within a group stays
    study.set_user_attr(CONFIRM_PLAN_ATTR, [vars(job) for job in planned])
    return planned


def _top_configurations(study, search, top_k: int) -> list:
    """The best trial of each of the top_k distinct feasible configurations (with several objectives: up to top_k
    points spanning the Pareto front), then the baseline if it is not among them."""
    complete = [t for t in search if t.state == TrialState.COMPLETE]
    if len(study.directions) > 1:
        chosen = pareto.spread(pareto.front(search, study.directions), top_k)
    else:
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        ranked = sorted((t for t in complete if pareto.feasible(t)),
                        key=lambda t: (-t.value if maximize else t.value, t.number))
        chosen = []
        for trial in ranked:
            if _key(trial.params) not in {_key(t.params) for t in chosen} and len(chosen) < top_k:
                chosen.append(trial)
    seen = {_key(t.params) for t in chosen}
    baseline = next((t for t in complete if t.user_attrs.get(ROLE_ATTR) == "baseline"), None)
    if baseline and _key(baseline.params) not in seen:
        chosen.append(baseline)
    return chosen


def _key(params: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def mark(trial: optuna.Trial, job: ConfirmJob) -> None:
    trial.set_user_attr(ROLE_ATTR, "confirm")
    trial.set_user_attr(CONFIRMS_ATTR, job.source)
    trial.set_user_attr(SEED_ATTR, job.seed)


class ConfirmingSampler(BaseSampler):
    """The study's sampler, with values pinned per trial: for confirmation trials (numbered n_search and up) all of
    them, those of the configuration they repeat; for a population's later members, the values its stack shares
    (batch size, model), the sampler choosing the rest."""

    def __init__(self, sampler: BaseSampler, n_search: int):
        self.sampler, self.n_search = sampler, n_search
        self.fixed: dict[int, dict] = {}  # trial number -> params, filled in before the trial suggests them

    def _confirming(self, trial) -> bool:
        return trial.number >= self.n_search

    def infer_relative_search_space(self, study, trial):
        return {} if self._confirming(trial) else self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        if self._confirming(trial):
            return {}
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


def answer(study: optuna.Study, study_seed: int) -> Answer | None:
    """The confirmed best (best mean over its seeds: the search trial's own and the fresh ones) and the baseline, or
    None before any confirmation ran. Counting the search trial's value as one seed is never worse in the measured
    simulation (docs/benchmarks.md): the fresh seeds outweigh the luck that picked it."""
    by_source: dict[int, dict] = {}
    infeasible = set()  # configurations that broke a constraint on some seed: shown, never the answer
    trials = study.get_trials(deepcopy=False)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.user_attrs.get(ROLE_ATTR) == "confirm":
            if trial.user_attrs.get(FEASIBLE_ATTR) is False:
                infeasible.add(trial.user_attrs[CONFIRMS_ATTR])
            entry = by_source.setdefault(trial.user_attrs[CONFIRMS_ATTR], {"values": {}, "test": {}})
            seed = trial.user_attrs[SEED_ATTR]
            entry["values"][seed] = trial.value
            if TEST_ACCURACY_ATTR in trial.user_attrs:
                entry["test"][seed] = trial.user_attrs[TEST_ACCURACY_ATTR]
    if not by_source:
        return None
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
    baseline = next((e for e in table if trials[e.trial].user_attrs.get(ROLE_ATTR) == "baseline"), None)
    return Answer(best, baseline, table)


def _se(values: list[float]) -> float:
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
