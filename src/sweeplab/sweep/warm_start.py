"""Warm start: a new study's first search trials are another study's confirmed best and top configurations.

`hydra.sweeper.warm_start=<study name>` (in this sweep's storage) or `<storage URL>#<study name>`. Extending a
study (a larger n_trials) keeps asking the same question; a warm start asks a new one (another space, more epochs,
another dataset) and lets the old answers go first. Configurations outside the new space are skipped."""
import logging
from dataclasses import dataclass

import optuna

from sweeplab.errors import ConfigError, first_line
from sweeplab.names import QUESTION_ATTR, ROLE_ATTR, WARM_START_ATTR
from sweeplab.sweep import confirmation
from sweeplab.sweep.plan import SweepPlan, contains
from sweeplab.sweep.storage import open_storage
from sweeplab.sweep.study import role

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    name: str
    configurations: list  # (trial number, params), best first


def source(plan: SweepPlan) -> Source:
    """The study to start from and its best configurations, or one line saying why it cannot be read."""
    where, _, name = plan.warm_start.rpartition("#")
    try:
        storage = open_storage(where) if where else plan.storage
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise ConfigError(f"hydra.sweeper.warm_start={plan.warm_start}: there is no study {name!r} in "
                          f"{'that storage' if where else plan.storage_hint}; give its name, or <storage URL>#<name>"
                          ) from None
    except Exception as error:
        raise ConfigError(f"hydra.sweeper.warm_start={plan.warm_start} cannot be read: {first_line(error)}") from None
    if name == plan.name and not where:
        raise ConfigError(f"hydra.sweeper.warm_start={name} is this study: to run more of its trials, raise "
                          f"hydra.sweeper.n_trials instead")
    return Source(name, best_configurations(study, max(plan.confirm.top_k, 3)))


def best_configurations(study: optuna.Study, top_k: int) -> list:
    """The confirmed configurations by their mean over seeds, then the search's top_k, each configuration once."""
    seed = (study.user_attrs.get(QUESTION_ATTR) or {}).get("fixed", {}).get("seed", -1)
    confirmed = confirmation.answer(study, seed)
    ranked = sorted(confirmed.table, key=lambda e: e.mean, reverse=_maximize(study)) if confirmed else []
    chosen = [(e.trial, e.params) for e in ranked]
    chosen += [(t.number, dict(t.params)) for t in confirmation.top_configurations(study, top_k) if role(t) != "baseline"]
    unique, seen = [], set()
    for number, params in chosen:
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        if key not in seen:
            seen.add(key)
            unique.append((number, params))
    return unique


def enqueue(study: optuna.Study, plan: SweepPlan, warm: Source) -> None:
    """The source's configurations that lie in this study's space, as its first search trials after the baseline."""
    baseline = plan.baseline or {}
    inside = [(n, p) for n, p in warm.configurations
              if all(k in plan.distributions and contains(plan.distributions[k], v) for k, v in p.items())]
    queued = [(n, p) for n, p in inside if p != baseline]
    for number, params in queued:
        study.enqueue_trial(params, user_attrs={ROLE_ATTR: "search", WARM_START_ATTR: f"{warm.name}#{number}"})
    study.set_user_attr(WARM_START_ATTR, warm.name)
    skipped = len(warm.configurations) - len(inside)
    log.warning("Warm start from study %s: %d of its best configurations queued first%s", warm.name, len(queued),
                f" ({skipped} outside this search space skipped)" if skipped else "")


def _maximize(study: optuna.Study) -> bool:
    return study.direction == optuna.study.StudyDirection.MAXIMIZE
