"""A job's link back to its Optuna trial, rebuilt from the study's storage so it works in any process:
report each epoch's validation accuracy, keep the trial's heartbeat, and stop at once when pruned."""
import optuna
from sweeplab.building import build
from optuna.storages._heartbeat import get_heartbeat_thread

from sweeplab.sweep.storage import open_storage

PRUNER_ATTR = "sweeplab.pruner"
PARENT_RUN_ATTR = "sweeplab.mlflow_parent_run_id"
RUN_ID_ATTR = "mlflow_run_id"
OUTPUT_DIR_ATTR = "output_dir"


class TrialLink:
    def __init__(self, storage_url: str, study_name: str, trial_id: int):
        storage = open_storage(storage_url)
        study = optuna.load_study(study_name=study_name, storage=storage)
        pruner_spec = study.user_attrs.get(PRUNER_ATTR)
        if pruner_spec:
            study.pruner = build(pruner_spec)
        self.study = study
        self.trial = optuna.trial.Trial(study, trial_id)
        self.parent_run_id = study.user_attrs.get(PARENT_RUN_ATTR)
        self._heartbeat = get_heartbeat_thread(trial_id, storage)

    @classmethod
    def from_config(cls, trial_cfg) -> "TrialLink | None":
        if trial_cfg.get("trial_id") is None:
            return None
        return cls(trial_cfg.storage, trial_cfg.study_name, int(trial_cfg.trial_id))

    @property
    def number(self) -> int:
        return self.trial.number

    def __enter__(self) -> "TrialLink":
        self._heartbeat.start()
        return self

    def __exit__(self, *exc) -> None:
        self._heartbeat.join()

    def report(self, epoch: int, value: float) -> None:
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} (val_accuracy {value:.4f})")

    def remember(self, output_dir, run_id: str | None) -> None:
        self.trial.set_user_attr(OUTPUT_DIR_ATTR, str(output_dir))
        if run_id:
            self.trial.set_user_attr(RUN_ID_ATTR, run_id)
