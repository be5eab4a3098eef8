"""What a trial's job is launched with beyond its searched values: the link to its trial (or its population's
trials) in its environment, its folder named by trial number, and the confirmation runs' fresh seeds."""
import json

from sweeplab import compat
from sweeplab.names import TRIAL_ENV
from sweeplab.sweep.plan import SweepPlan

LINK_OVERRIDE = f"++hydra.job.env_set.{TRIAL_ENV}="  # the job's link to its trial(s): in its environment


def link_override(plan: SweepPlan, study_name: str, **trials) -> str:
    """The job's link to its study and its trial (trial_id=...) or trials (population=[...])."""
    return LINK_OVERRIDE + quote(json.dumps({"storage": plan.storage_url, "study_name": study_name, **trials}))


def job_folder(number: int, confirming: bool) -> str:
    return f"confirm-{number}" if confirming else str(number)


def population_overrides(members: list, plan: SweepPlan, study_name: str) -> list[str]:
    """One job for a population: the first member's overrides, its own folder, each member's trial id, number and
    the overrides in which it differs from the first, and how many train at once: the members after that many are
    reserves (see sweeplab.populations.job)."""
    first_trial, first = members[0]
    own = ("hydra.sweep.subdir=", LINK_OVERRIDE)
    confirming = study_name != plan.name
    spec = [{"number": trial.number, "trial_id": compat.trial_id(trial), "folder": job_folder(trial.number, confirming),
             "overrides": [o for o in overrides if o not in first and not o.startswith(own)]}
            for trial, overrides in members]
    return [o for o in first if not o.startswith(own)] + [
        f"hydra.sweep.subdir=population-{job_folder(first_trial.number, confirming)}",
        link_override(plan, study_name, population=spec, width=plan.population),
    ]


def confirmation_seeds(study_seed: int, count: int) -> list[int]:
    """Fresh seeds for confirmation runs: never the study's own (its search trials used that one)."""
    return [study_seed + 1000 * (i + 1) for i in range(count)]


def quote(value) -> str:
    """A value as one quoted Hydra override value."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
