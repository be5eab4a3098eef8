"""The Optuna study as sweeplab keeps it: created once, found again on resume, its dead trials reaped.

A sweep keeps two studies in one storage: the search study (the baseline and the search trials: every Optuna tool,
optuna-dashboard's Best Trial included, sees the search alone) and its sibling `<study>.confirm`, which holds the
confirmation trials (the search's top configurations trained again on fresh seeds). Each trial's role is a user
attribute (sweeplab.role: baseline | search | confirm), never inferred from its number."""
import logging
import os
import socket
import warnings

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeplab.names import (
    CONFIRM_SUFFIX, FAIL_REASON_ATTR, INTERRUPTED, NOTE_ATTR, OUTPUT_DIR_ATTR, RECOVERED_ATTR, ROLE_ATTR,
    RUN_SETTINGS_ATTR, SCHEDULER_ENDED, WORKER_ATTR, WORKER_DIED,
)
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


def confirm_study_name(search_name: str) -> str:
    return search_name + CONFIRM_SUFFIX


def open_confirm_study(search: optuna.Study, storage, sampler) -> optuna.Study:
    """The sibling study that holds the search's confirmation trials, created on first use with a note saying so."""
    name = confirm_study_name(search.study_name)
    study, created = open_study(name, storage, sampler, [d.name.lower() for d in search.directions])
    if created:
        note = (f"Confirmation of study {search.study_name}: its top configurations and its baseline trained again "
                f"on fresh seeds (re-seeded repeats, not a search). The search, its best trial and the confirmed "
                f"answer's source trials are in {search.study_name}.")
        study.set_user_attr(NOTE_ATTR, note)
        try:  # optuna-dashboard shows the note on the study's page
            from optuna_dashboard import save_note
            save_note(study, note)
        except ImportError:
            pass
    return study


def confirm_study_of(study: optuna.Study) -> optuna.Study | None:
    """The search study's sibling that holds its confirmation trials, or None if it has none."""
    try:
        return optuna.load_study(study_name=confirm_study_name(study.study_name), storage=compat.storage_of(study))
    except KeyError:
        return None


def role(trial: FrozenTrial) -> str:
    """baseline | search | confirm (a trial without the attribute was asked by the search)."""
    return trial.user_attrs.get(ROLE_ATTR, "search")


def search_trials(study: optuna.Study, states=None) -> list[FrozenTrial]:
    """The search trials of a study, the baseline among them: what the search's best, plots and counts are made of.
    (Studies made before confirmation moved to its own study hold confirmation trials too: they are left out.)"""
    return [t for t in study.get_trials(deepcopy=False, states=states) if role(t) != "confirm"]


def interrupted(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.FAIL and trial.user_attrs.get(FAIL_REASON_ATTR) == INTERRUPTED


def to_run_again(trial: FrozenTrial) -> bool:
    """A baseline or confirmation trial that did not end by itself (interrupted, its worker died or went stale, the
    scheduler ended its job): a rerun trains its configuration again until it completes."""
    reason = trial.user_attrs.get(FAIL_REASON_ATTR)
    return trial.state == TrialState.FAIL and (reason in (None, INTERRUPTED, WORKER_DIED)
                                               or str(reason).startswith(SCHEDULER_ENDED))


def claim(trial: optuna.Trial, run_settings: dict | None = None, attrs: dict | None = None) -> None:
    """Mark the trial with this process, so a later sweep on this host can tell that its owner died, and with the
    settings of this run that may change between runs of a study (pruner, sampler, n_jobs, population); ``attrs``
    (e.g. its role) are written with them, in one go."""
    compat.set_user_attrs(trial, {WORKER_ATTR: f"{socket.gethostname()}:{os.getpid()}",
                                  **({RUN_SETTINGS_ATTR: run_settings} if run_settings else {}), **(attrs or {})})


def owned_running(study: optuna.Study) -> list[FrozenTrial]:
    """The RUNNING trials this process claimed."""
    me = f"{socket.gethostname()}:{os.getpid()}"
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [t for t in running if t.user_attrs.get(WORKER_ATTR) == me]


def reap_dead_trials(study: optuna.Study, on_failed, recover=None) -> list[int]:
    """FAIL the RUNNING trials whose worker is gone: stale heartbeats (database storages, any host) and
    owner processes that no longer exist (any storage, this host). ``on_failed(study, trial)`` is called for each.

    A worker killed after its job had ended but before it told the study leaves a trial whose result is recorded
    elsewhere: ``recover(study, trial)`` gives its values (from its MLflow run) or None, and such a trial is COMPLETE
    with them instead of FAIL, so nothing already reported is lost."""
    host = socket.gethostname()

    def owner_died(trial: FrozenTrial) -> bool:
        worker_host, _, pid = str(trial.user_attrs.get(WORKER_ATTR, "")).rpartition(":")
        return worker_host == host and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid))

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    gone = {t.number for t in running if owner_died(t)}  # this host's workers that no longer exist
    reaped = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        stale = set(compat.stale_trial_ids(study))
        dead = [t for t in running if t.number in gone or compat.trial_id(t) in stale]
        for trial in dead if recover else ():
            _recover(study, trial, recover)
        if stale:  # Optuna looks them up again, fails them and runs the storage's heartbeat_stale_trial_callback
            before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
            optuna.storages.fail_stale_trials(study)
            after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
            reaped.extend(sorted(before - after))
    still = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))} if gone else set()
    for trial in (t for t in running if t.number in gone and t.number in still):  # not recovered nor failed above
        optuna.trial.Trial(study, compat.trial_id(trial)).set_user_attr(FAIL_REASON_ATTR, WORKER_DIED)
        study.tell(trial.number, state=TrialState.FAIL)
        on_failed(study, study.trials[trial.number])
        reaped.append(trial.number)
    if reaped:
        log.warning("Marked trials %s FAIL: their workers died while running them", reaped)
    return reaped


def _recover(study: optuna.Study, trial: FrozenTrial, recover) -> None:
    recorded = recover(study, trial)
    if recorded is None:
        return
    run_id, values = recorded
    try:
        optuna.trial.Trial(study, compat.trial_id(trial)).set_user_attr(RECOVERED_ATTR, run_id)
        study.tell(trial.number, state=TrialState.COMPLETE, values=values)
    except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):  # another worker ended it meanwhile
        return
    log.warning("Trial %d: its worker died after its job finished; its result %s is read back from MLflow run %s",
                trial.number, values, run_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def counts(study: optuna.Study, trials: list[FrozenTrial] | None = None) -> dict[str, int]:
    trials = search_trials(study) if trials is None else trials
    return {state.name.lower(): sum(t.state == state for t in trials) for state in STARTED_STATES}


def never_ran(trial: FrozenTrial) -> bool:
    """FAIL because its worker died before the trial's job began (it waited in a population's pool, or the worker
    died between asking for it and launching it): it trained nothing, and a rerun replaces it."""
    return trial.state == TrialState.FAIL and trial.user_attrs.get(FAIL_REASON_ATTR) in (None, WORKER_DIED) and \
        OUTPUT_DIR_ATTR not in trial.user_attrs


def counted(study: optuna.Study) -> list[int]:
    """The numbers of the search trials that count toward n_trials: every one started, except those interrupted or
    whose worker died before their job began (a rerun replaces them) and baselines that ended without a result and
    were enqueued again."""
    trials = search_trials(study)
    baselines = [t for t in trials if role(t) == "baseline"]
    replaced = {t.number for t in baselines[:-1] if to_run_again(t)}
    return [t.number for t in trials if t.state in STARTED_STATES and not interrupted(t) and not never_ran(t)
            and t.number not in replaced]


def started(study: optuna.Study) -> int:
    return len(counted(study))


def best_search_trial(study: optuna.Study) -> FrozenTrial | None:
    """The search's best feasible trial, the baseline included (confirmation repeats never); None with several
    objectives, which have a front instead (sweeplab.sweep.pareto)."""
    if len(study.directions) > 1:
        return None
    complete = [t for t in search_trials(study, (TrialState.COMPLETE,)) if all(v <= 0 for v in t.constraints.values())]
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
