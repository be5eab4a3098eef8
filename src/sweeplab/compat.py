"""Every private Hydra, hydra-optuna-sweeper, Optuna and submitit API sweeplab relies on, in one place, each named here and
checked by tests/test_compat.py, which fails naming the installed versions when one of them changes. pyproject.toml
pins those packages (==) to the versions the tests ran; README says how to try a newer one.

Hydra's internals load with Hydra itself; Optuna's and the sweeper plugin's load on first use (a single job that
does not sweep never imports Optuna)."""
from contextlib import contextmanager
from importlib import import_module
from importlib.metadata import version

from hydra._internal.config_repository import ConfigRepository  # group options, for one-line errors
from hydra._internal.config_search_path_impl import ConfigSearchPathImpl  # the app's search path, for the same
from hydra._internal.utils import create_config_search_path, get_args_parser  # Hydra's command line, read first
# what Hydra's run_job uses, for sweep/in_process.py's lighter one: the context instantiate runs in, the .hydra/ files,
# a failed job's traceback in its log file
from hydra._internal.execution_policy import execution_whitelist
from hydra.core.utils import _log_job_error_to_file as log_job_error_to_file, _save_config as save_config

# name -> (module, attribute), imported when first asked for
_LAZY = {
    "OptunaSweeperImpl": ("hydra_plugins.hydra_optuna_sweeper._impl", "OptunaSweeperImpl"),  # the official sweeper
    "create_params_from_overrides": ("hydra_plugins.hydra_optuna_sweeper._impl", "create_params_from_overrides"),
    "is_heartbeat_enabled": ("optuna.storages._heartbeat", "is_heartbeat_enabled"),
    # its static _apply_overrides_to_config sets value overrides on a composed config (sweep/compose.py)
    "ConfigLoaderImpl": ("hydra._internal.config_loader_impl", "ConfigLoaderImpl"),
    # submitit's job-state poller (subclassed by sweeplab.slurm.watcher) and the job class that holds it
    "SlurmInfoWatcher": ("submitit.slurm.slurm", "SlurmInfoWatcher"),
    "SlurmJob": ("submitit.slurm.slurm", "SlurmJob"),
}
# RDBStorage methods that Optuna's cache layer calls directly, which sweep/storage.py retries like the public ones.
RDB_PRIVATE_OPERATIONS = ["_get_stale_trial_ids", "_create_new_trial", "_set_trial_param", "_get_best_trial_id",
                          "_get_trials"]

__all__ = ["ConfigRepository", "ConfigSearchPathImpl", "create_config_search_path", "get_args_parser",
           "execution_whitelist", "log_job_error_to_file", "save_config",
           "RDB_PRIVATE_OPERATIONS", "versions", "trial_id", "storage_of", "set_trial_waiting", "return_value",
           "launcher_params", "set_user_attrs", "stale_trial_ids", "collected_user_attrs", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module, attribute = _LAZY[name]
        return getattr(import_module(module), attribute)
    raise AttributeError(name)


def versions() -> str:
    return ", ".join(f"{p} {version(p)}" for p in ("hydra-core", "hydra-optuna-sweeper", "optuna",
                                                   "hydra-submitit-launcher", "submitit"))


def trial_id(trial) -> int:
    """The storage's id of an Optuna trial (Trial and FrozenTrial keep it private; storages and heartbeats need it)."""
    return trial._trial_id


def storage_of(study):
    """The storage a study lives in (Study keeps it private)."""
    return study._storage


def stale_trial_ids(study) -> list[int]:
    """The RUNNING trials whose heartbeat went silent, before Optuna's fail_stale_trials fails them (none without
    heartbeats)."""
    storage = study._storage
    if not import_module("optuna.storages._heartbeat").is_heartbeat_enabled(storage):
        return []
    return storage._get_stale_trial_ids(study._study_id)


def set_trial_waiting(study, trial) -> None:
    """Put an asked trial back in the study's queue (no public API does this)."""
    from optuna.trial import TrialState

    study._storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)


def set_user_attrs(trial, attrs: dict) -> None:
    """Set several user attributes of an Optuna trial (an ``optuna.Trial``) at once. In a journal storage that is one
    append to the journal (one lock, one fsync) instead of one per attribute, each attribute still its own log, as
    Optuna's replay wants; other storages get one call per attribute through the public API."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal._storage import JournalOperation

    if not attrs:
        return
    storage, trial_id = trial.storage, trial._trial_id
    if isinstance(storage, JournalStorage):
        with storage._thread_lock:
            worker_id = storage._replay_result.worker_id
            storage._backend.append_logs([
                {"op_code": JournalOperation.SET_TRIAL_USER_ATTR, "worker_id": worker_id, "trial_id": trial_id,
                 "user_attr": {key: value}} for key, value in attrs.items()])
            storage._sync_with_backend()  # raises, as set_trial_user_attr does, if the trial is finished or unknown
    else:
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
    trial._cached_frozen_trial.user_attrs.update(attrs)  # what Trial.set_user_attr also keeps up to date


@contextmanager
def collected_user_attrs(trial):
    """Within this block, ``trial.set_user_attr`` (as called by code we do not own, e.g. the official sweeper's
    ``_configure_trials`` for each fixed parameter) collects the attributes; they are written at the end of the
    block in one go (``set_user_attrs``), and not at all if the block raises."""
    collected = {}

    def collect(key, value):
        collected[key] = value
        trial._cached_frozen_trial.user_attrs[key] = value  # trial.user_attrs shows it at once, as before

    trial.set_user_attr = collect
    try:
        yield collected
    finally:
        del trial.set_user_attr  # the class's method again
    set_user_attrs(trial, collected)


def return_value(ret):
    """What a Hydra job returned, or the exception it raised, without JobReturn.return_value re-raising it."""
    return ret._return_value


def launcher_params(launcher) -> dict:
    """The submitit launcher's settings (hydra.launcher.*), which it reads when it submits each job."""
    return launcher.params
