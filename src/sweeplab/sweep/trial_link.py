"""A job's link back to its Optuna trial, rebuilt from the study's storage so it works in any process:
report each epoch's objective, keep the trial's heartbeat, and stop at once when pruned."""
import logging
import threading

import optuna

from sweeplab.building import build
from sweeplab.names import (
    CONFIRM_SUFFIX, FEASIBLE_ATTR, OBJECTIVE_ATTR, OUTPUT_DIR_ATTR, PARENT_RUN_ATTR, PRUNER_ATTR, ROLE_ATTR,
    RUN_ID_ATTR, RUN_SETTINGS_ATTR, SAMPLER_ATTR,
)
from sweeplab import compat
from sweeplab.sweep.storage import open_storage

log = logging.getLogger(__name__)

# One storage per URL and process: the jobs that a process runs one after another (Hydra's basic launcher) reuse its
# connection, and a journal file is read on from where the last job left it, not replayed whole for every trial.
_storages: dict[str, optuna.storages.BaseStorage] = {}


class TrialLink:
    Pruned = optuna.TrialPruned  # what report() raises: the job ends its run KILLED and lets it through

    def __init__(self, study: optuna.Study, storage, trial_id: int, parent_run_id: str | None = None):
        self.study = study
        self.trial = optuna.trial.Trial(study, trial_id)
        attrs = storage.get_trial(trial_id).user_attrs
        self.run_settings = attrs.get(RUN_SETTINGS_ATTR, {})
        # Baseline and confirmation trials measure a chosen configuration: only the search is pruned, with the pruner
        # of the run that asked the trial (a study made before trials recorded it: the study's).
        self.role = attrs.get(ROLE_ATTR, "search")
        spec = self.run_settings.get("pruner", study.user_attrs.get(PRUNER_ATTR))
        self.pruner = build(spec) if spec and self.role == "search" else None
        self.parent_run_id = parent_run_id or study.user_attrs.get(PARENT_RUN_ATTR)
        self._heartbeat = Heartbeat(storage, [trial_id])

    @classmethod
    def for_trials(cls, link: dict, trial_ids: list[int]) -> list["TrialLink"]:
        """Links to these trials of the job's study (sweeplab.names.TRIAL_ENV: its storage and name), sharing one
        connection to the storage and one copy of the study."""
        storage = _storages.get(link["storage"])
        if storage is None:  # the sweep is running: a restarting database is waited for
            storage = _storages[link["storage"]] = open_storage(link["storage"], patient=True)
        study = optuna.load_study(study_name=link["study_name"], storage=storage)
        # The confirmation study's trials join the search study's MLflow parent run.
        search_name = link["study_name"].removesuffix(CONFIRM_SUFFIX)
        parent_run_id = None if search_name == link["study_name"] else \
            storage.get_study_user_attrs(storage.get_study_id_from_name(search_name)).get(PARENT_RUN_ATTR)
        return [cls(study, storage, trial_id, parent_run_id) for trial_id in trial_ids]

    @classmethod
    def from_link(cls, link: dict) -> "TrialLink":
        """From the job's link: the study's storage and name, and the trial's id."""
        (only,) = cls.for_trials(link, [int(link["trial_id"])])
        return only

    @property
    def number(self) -> int:
        return self.trial.number

    @property
    def study_name(self) -> str:
        return self.study.study_name

    @property
    def params(self) -> dict:
        """The trial's searched values (its run is named after them)."""
        return self.trial.params

    @property
    def sampler_name(self) -> str | None:
        return self.run_settings.get("sampler", self.study.user_attrs.get(SAMPLER_ATTR))

    def __enter__(self) -> "TrialLink":
        self._heartbeat.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._heartbeat.__exit__(*exc)

    def report(self, epoch: int, value: float, last: bool = False) -> None:
        """Record the epoch's value; raise Pruned if the pruner stops the trial (never after its ``last`` epoch:
        its result is complete)."""
        self.trial.report(value, epoch)
        if self.pruner is None or last:
            return
        self.study.pruner = self.pruner
        if self.trial.should_prune():
            metric = self.study.user_attrs.get(OBJECTIVE_ATTR, "val_accuracy")
            raise optuna.TrialPruned(f"pruned after epoch {epoch} (best {metric} {value:.4g})")

    def record(self, **values) -> None:
        """Results beside the objective (e.g. test accuracy), for the confirmation table."""
        compat.set_user_attrs(self.trial, values)

    def constrain(self, violations: dict[str, float]) -> None:
        """Each constraint's value (<= 0: met) where Optuna keeps it (``Trial.set_constraint``): the samplers that
        model constraints read it, and ``Study.best_trial(s)`` leave infeasible trials out; and whether all are met."""
        for name, value in violations.items():
            self.trial.set_constraint(name, value)
        if violations:
            compat.set_user_attrs(self.trial, {FEASIBLE_ATTR: all(v <= 0 for v in violations.values())})

    def remember(self, output_dir, run_id: str | None) -> None:
        compat.set_user_attrs(self.trial, {OUTPUT_DIR_ATTR: str(output_dir),
                                           **({RUN_ID_ATTR: run_id} if run_id else {})})


class Heartbeat:
    """Keep running trials' heartbeats fresh while this process works on them (database storages only).

    Unlike Optuna's own heartbeat thread, which ends at its first failed write, a beat that fails while the database
    restarts is logged and tried again at the next interval: a short outage does not make a live trial look dead.
    """

    def __init__(self, storage, trial_ids: list[int] | set[int]):
        self.storage = storage
        # A set is beaten as it is at each beat: its owner adds and removes trials while they wait (population pool).
        self.trial_ids = trial_ids if isinstance(trial_ids, set) else list(trial_ids)
        self.interval = storage.get_heartbeat_interval() if compat.is_heartbeat_enabled(storage) else None
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self) -> "Heartbeat":
        if self.interval and (self.trial_ids or isinstance(self.trial_ids, set)):
            self._beat()
            self._thread = threading.Thread(target=self._run, name="sweeplab-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def _beat(self) -> None:
        for trial_id in list(self.trial_ids):
            try:
                self.storage.record_heartbeat(trial_id)
            except Exception as error:  # the database may be restarting: try again at the next beat
                log.warning("heartbeat of trial id %d not recorded: %s", trial_id, (str(error) or repr(error))[:200])
