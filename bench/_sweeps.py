"""Run a real `train.py -m hydra/sweeper=optuna` in a subprocess and read back what its study recorded."""
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from sweeplab.names import JOURNAL_FILE, RUN_ID_ATTR
from sweeplab.sweep.study import confirm_study_of

ROOT = Path(__file__).resolve().parents[1]


def run_sweep(name: str, workdir: Path, overrides: list[str], confirm: bool = False) -> dict:
    """The search alone, unless ``confirm`` (then sweeplab's default confirmation follows it)."""
    sweep_dir = workdir / name
    command = [
        sys.executable, str(ROOT / "train.py"), "-m", "hydra/sweeper=optuna", f"hydra.sweeper.study_name={name}",
        f"hydra.sweep.dir={sweep_dir}", f"mlflow.tracking_uri=sqlite:///{workdir}/mlflow.db",
        f"mlflow.artifact_location={workdir}/mlruns", "progress=false",
        *([] if confirm else ["hydra.sweeper.confirm.top_k=0"]), *overrides,
    ]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"sweep {name} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    storage = JournalStorage(JournalFileBackend(str(sweep_dir / JOURNAL_FILE)))
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)  # the search; its confirmation trials live in `<name>.confirm`
    confirming = confirm_study_of(study)
    confirm_trials = confirming.get_trials(deepcopy=False) if confirming is not None else []
    return {
        "name": name,
        "wall_s": wall,
        "epochs": sum(len(t.intermediate_values) for t in trials + confirm_trials),
        "best": study.best_value,
        "best_params": study.best_params,
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
        "best_run_id": study.best_trial.user_attrs.get(RUN_ID_ATTR),
        "trials": trials,
        "confirm_trials": confirm_trials,
    }


def run_job(workdir: Path, overrides: list[str]) -> str:
    """Run one `train.py` job; return its MLflow run id."""
    from mlflow.tracking import MlflowClient

    command = [
        sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={workdir}/single", "progress=false",
        f"mlflow.tracking_uri=sqlite:///{workdir}/mlflow.db", f"mlflow.artifact_location={workdir}/mlruns",
        "mlflow.experiment=baseline", *overrides,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"job failed ({result.returncode}):\n{result.stderr[-3000:]}")
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("baseline")
    return client.search_runs([experiment.experiment_id], order_by=["start_time DESC"], max_results=1)[0].info.run_id


def confirmed_answer(sweep_dir: Path) -> tuple[dict, str]:
    """The confirmed section of a sweep's optimization_results.yaml, and its best parameters in a few characters."""
    import yaml

    confirmed = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())["confirmed"]
    params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in confirmed["best"]["params"].items())
    return confirmed, params
