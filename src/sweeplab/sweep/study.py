"""The Optuna study as sweeplab keeps it: created once, found again on resume, its dead trials reaped."""
import logging
import os
import socket
import warnings

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeplab.names import FAIL_REASON_ATTR, WORKER_ATTR
from sweeplab import compat

log = logging.getLogger(__name__)
STARTED_STATES = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def open_study(name: str, storage, sampler, directions: list[str]) -> tuple[optuna.Study, bool]:
    """Create the study, or load it when it exists; the bool says whether this process created it.

    Creation is atomic in every Optuna storage, so exactly one of several workers started together is the creator.
    """
    try:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, directions=directions)
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        if sampler is not None:
            # Every worker seeded alike would propose the same trials: joiners and resumers draw a fresh seed.
            sampler.reseed_rng()
        return study, False


def claim(trial: optuna.Trial) -> None:
    """Mark the trial with this process, so a later sweep on this host can tell that its owner died."""
    trial.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")


def reap_dead_trials(study: optuna.Study, on_failed) -> list[int]:
    """FAIL the RUNNING trials whose worker is gone: stale heartbeats (database storages, any host) and
    owner processes that no longer exist (any storage, this host). ``on_failed(study, trial)`` is called for each."""
    reaped = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        optuna.storages.fail_stale_trials(study)  # runs the storage's heartbeat_stale_trial_callback
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    reaped.extend(sorted(before - after))
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get(WORKER_ATTR, "")).rpartition(":")
        if worker_host != host or not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        optuna.trial.Trial(study, compat.trial_id(trial)).set_user_attr(FAIL_REASON_ATTR, "its worker process died")
        study.tell(trial.number, state=TrialState.FAIL)
        on_failed(study, study.trials[trial.number])
        reaped.append(trial.number)
    if reaped:
        log.warning("Marked trials %s FAIL: their workers died while running them", reaped)
    return reaped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def counts(study: optuna.Study) -> dict[str, int]:
    trials = study.get_trials(deepcopy=False)
    return {state.name.lower(): sum(t.state == state for t in trials) for state in STARTED_STATES}


def started(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=STARTED_STATES))


def best_search_trial(study: optuna.Study, n_search: int) -> FrozenTrial | None:
    """The search's best feasible trial (confirmation trials, numbered n_search and up, are left out); None with
    several objectives, which have a front instead (sweeplab.sweep.pareto)."""
    if len(study.directions) > 1:
        return None
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.number < n_search and all(v <= 0 for v in t.constraints.values())]
    if not complete:
        return None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return max(complete, key=lambda t: t.value) if maximize else min(complete, key=lambda t: t.value)


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    if len(study.directions) > 1:
        return None
    try:
        return study.best_trial
    except ValueError:  # no COMPLETE trial yet
        return None
