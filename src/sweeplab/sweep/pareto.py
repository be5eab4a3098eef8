"""Several objectives: the search's Pareto front, the front points worth confirming, and the confirmed front.

The search returns the non-dominated set of its feasible trials (Optuna's ``best_trials``). Confirmation trains up to
top_k front points, chosen to span the front, and the baseline again on fresh seeds; each objective is then a mean
± standard error over seeds (the search trial's own and the fresh ones), the confirmed front is the non-dominated set
of those means, and each point says which others it beats beyond noise: better in an objective by more than two
standard errors of the difference, paired by seed (every configuration trains on the same seeds).
"""
import math
import statistics
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeplab.names import CONFIRMS_ATTR, FEASIBLE_ATTR, SEED_ATTR
from sweeplab.sweep.study import confirm_study_of, role, search_trials

# Costs every job records with its trial (sweeplab.cost), shown beside the objectives when they are not among them.
SHOWN_COSTS = ("train_time_s", "peak_memory_mb")


def feasible(trial: FrozenTrial) -> bool:
    """Whether the trial met every constraint (Optuna's convention: each stored value <= 0)."""
    return all(v <= 0 for v in trial.constraints.values())


def search_front(study: optuna.Study) -> list[FrozenTrial]:
    """The search's Pareto front (confirmation repeats left out): see ``front``."""
    return front(search_trials(study), study.directions)


def front(trials: list[FrozenTrial], directions) -> list[FrozenTrial]:
    """The COMPLETE, feasible, non-dominated trials, in order of the first objective, best first."""
    trials = [t for t in trials if t.state == TrialState.COMPLETE and feasible(t)]
    found = [t for t in trials if not any(dominates(o.values, t.values, directions) for o in trials)]
    sign = _signs(directions)[0]
    return sorted(found, key=lambda t: (-sign * t.values[0], t.number))


def dominates(a, b, directions) -> bool:
    """Whether values ``a`` are at least as good as ``b`` in every objective and better in one."""
    signs = _signs(directions)
    as_good = all(s * x >= s * y for s, x, y in zip(signs, a, b))
    return as_good and any(s * x > s * y for s, x, y in zip(signs, a, b))


def spread(front: list[FrozenTrial], k: int) -> list[FrozenTrial]:
    """Up to ``k`` distinct configurations of the front (ordered along it) that span it: both ends, then points
    evenly spaced between them."""
    distinct, seen = [], set()
    for trial in front:
        key = params_key(trial.params)
        if key not in seen:
            seen.add(key)
            distinct.append(trial)
    if k >= len(distinct):
        return distinct
    if k == 1:
        return distinct[:1]
    picks = sorted({round(i * (len(distinct) - 1) / (k - 1)) for i in range(k)})
    return [distinct[i] for i in picks]


def params_key(params: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


@dataclass
class FrontPoint:
    """One confirmed configuration: its values per seed (one list per seed, in the study's objective order)."""

    trial: int
    params: dict
    baseline: bool
    values: dict  # seed -> [value of each objective]
    costs: dict  # seed -> {cost metric: value}, as the jobs recorded them
    infeasible_seeds: int = 0
    on_front: bool = False
    beats: dict = field(default_factory=dict)  # trial number -> [metrics where this point is better beyond noise]

    def mean(self, i: int) -> float:
        return statistics.fmean(v[i] for v in self.values.values())

    def se(self, i: int) -> float:
        return _se([v[i] for v in self.values.values()])

    def cost_mean(self, name: str) -> float | None:
        found = [c[name] for c in self.costs.values() if name in c]
        return statistics.fmean(found) if found else None

    def cost_se(self, name: str) -> float | None:
        found = [c[name] for c in self.costs.values() if name in c]
        return _se(found) if found else None


def confirmed_front(study: optuna.Study, study_seed: int, metrics: list[str]) -> list[FrontPoint]:
    """Every confirmed configuration of the search study ``study`` (the search trial's seed and the fresh ones of its
    confirmation trials, in its sibling `<study>.confirm`), with ``on_front`` and ``beats`` filled in; empty before
    any confirmation ran. A configuration infeasible on any seed stays in the table (the baseline may be) but never
    on the front."""
    trials = study.get_trials(deepcopy=False)
    confirm = confirm_study_of(study)
    repeats = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if role(t) == "confirm"]
    repeats += confirm.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if confirm is not None else []
    points: dict[int, FrontPoint] = {}
    for trial in repeats:
        source = trials[trial.user_attrs[CONFIRMS_ATTR]]
        point = points.setdefault(source.number, FrontPoint(
            source.number, dict(source.params), role(source) == "baseline", {}, {}))
        _add_seed(point, trial, trial.user_attrs[SEED_ATTR])
    for point in points.values():
        source = trials[point.trial]
        if source.state == TrialState.COMPLETE:
            _add_seed(point, source, study_seed)
    table = [points[n] for n in sorted(points)]
    candidates = [p for p in table if not p.infeasible_seeds]
    means = {p.trial: [p.mean(i) for i in range(len(metrics))] for p in table}
    for point in candidates:
        point.on_front = not any(dominates(means[o.trial], means[point.trial], study.directions)
                                 for o in candidates if o is not point)
    for point in table:
        point.beats = {other.trial: wins for other in table if other is not point
                       and (wins := beyond_noise(point, other, metrics, study.directions))}
    return table


def _add_seed(point: FrontPoint, trial: FrozenTrial, seed: int) -> None:
    point.values[seed] = list(trial.values)
    point.costs[seed] = {k: v for k, v in trial.user_attrs.items() if isinstance(v, (int, float))}
    point.infeasible_seeds += trial.user_attrs.get(FEASIBLE_ATTR) is False


def beyond_noise(a: FrontPoint, b: FrontPoint, metrics: list[str], directions) -> list[str]:
    """The objectives in which ``a`` beats ``b`` by more than two standard errors of their paired difference."""
    seeds = sorted(a.values.keys() & b.values.keys())
    wins = []
    for i, (metric, sign) in enumerate(zip(metrics, _signs(directions))):
        differences = [sign * (a.values[s][i] - b.values[s][i]) for s in seeds]
        if len(differences) > 1:
            gain, se = statistics.fmean(differences), _se(differences)
            if gain > 2 * se:
                wins.append(metric)
    return wins


def _signs(directions) -> list[int]:
    return [1 if d in ("maximize", optuna.study.StudyDirection.MAXIMIZE) else -1 for d in directions]


def _se(values: list[float]) -> float:
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
