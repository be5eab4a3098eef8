"""What a trial writes to the stores, and how: the Optuna journal gets each trial's attributes in a few appends (one
lock and fsync each) with nothing lost, and the MLflow SQLite store runs in WAL mode, readable by another process
while the sweep writes and complete in mlflow.db alone once it has ended."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict

import pytest
from mlflow.tracking import MlflowClient

from sweeplab.names import OUTPUT_DIR_ATTR, ROLE_ATTR, RUN_ID_ATTR, WORKER_ATTR
from tests.helpers import PROJECT_ROOT, clean_env

pytestmark = pytest.mark.slow
TRIALS = 4
SET_TRIAL_USER_ATTR = 8  # optuna.storages.journal._storage.JournalOperation
# train.py, with Optuna's journal file backend counting its appends (each one takes the file lock and fsyncs).
COUNTING_SWEEP = """
import atexit, json, os, runpy, sys
from optuna.storages.journal import JournalFileBackend
appends, append_logs = [], JournalFileBackend.append_logs
def counted(self, logs):
    appends.append([[log["op_code"], log.get("trial_id")] for log in logs])
    append_logs(self, logs)
JournalFileBackend.append_logs = counted
atexit.register(lambda: open(os.environ["APPENDS_FILE"], "w").write(json.dumps(appends)))
sys.argv = sys.argv[1:]
runpy.run_path("train.py", run_name="__main__")
"""


@pytest.fixture(scope="module")
def swept(new_sweep):
    """A 4-trial one-epoch sweep, and what another process read from its MLflow store while it ran."""
    space = new_sweep("store-writes")
    env = {**clean_env(), "APPENDS_FILE": str(space.root / "appends.json")}
    argv = space.argv("epochs=1", f"hydra.sweeper.n_trials={TRIALS}")
    sweep = subprocess.Popen([sys.executable, "-c", COUNTING_SWEEP, *argv], cwd=PROJECT_ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen, reader = [], MlflowClient(space.uri)
    while sweep.poll() is None:  # this process reads the runs while the sweep writes them
        if (space.root / "mlflow.db").exists():
            experiments = [e.experiment_id for e in reader.search_experiments()]
            seen.append(len(reader.search_runs(experiments, "attributes.status = 'FINISHED'", max_results=100)))
        time.sleep(0.3)
    assert sweep.returncode == 0, sweep.stderr.read()[-3000:]
    return space, json.loads((space.root / "appends.json").read_text()), seen


def test_each_trials_attributes_come_in_four_journal_appends_and_all_replay(swept):
    space, appends, _ = swept
    attr_appends, attr_logs = defaultdict(int), defaultdict(int)
    for logs in appends:
        ours = {trial_id for op, trial_id in logs if op == SET_TRIAL_USER_ATTR}
        for trial_id in ours:
            attr_appends[trial_id] += 1
        for op, trial_id in logs:
            attr_logs[trial_id] += op == SET_TRIAL_USER_ATTR
    trials = space.study().trials  # a fresh replay of the journal, as optuna-dashboard reads it
    assert len(trials) == TRIALS
    for trial in trials:
        trial_id = trial._trial_id
        # claim and role; the sweeper's fixed parameters; output folder and run id; results beside the objective
        assert attr_appends[trial_id] == 4, (trial.number, attr_appends[trial_id])
        assert attr_logs[trial_id] >= 15  # one log per attribute, as Optuna's replay wants
        attrs = trial.user_attrs
        assert {WORKER_ATTR, ROLE_ATTR, OUTPUT_DIR_ATTR, RUN_ID_ATTR, "epochs", "dataset", "test_accuracy",
                "train_time_s"} <= set(attrs)
        assert attrs["epochs"] == "1" and attrs["dataset"] == "digits" and 0 < attrs["test_accuracy"] <= 1
        assert space.client().get_run(attrs[RUN_ID_ATTR]).data.tags["optuna.trial"] == str(trial.number)


def test_the_mlflow_store_is_in_wal_mode_and_read_by_another_process_meanwhile(swept, tmp_path):
    space, _, seen = swept
    database = space.root / "mlflow.db"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert seen and seen == sorted(seen) and seen[-1] >= 1  # reads during the sweep, finished runs piling up
    # The sweep copied its write-ahead log back into mlflow.db when it ended: the file alone holds every run.
    assert os.path.getsize(f"{database}-wal") == 0
    shutil.copy(database, tmp_path / "copy.db")
    reader = MlflowClient(f"sqlite:///{tmp_path}/copy.db")
    children = [r for r in reader.search_runs([e.experiment_id for e in reader.search_experiments()])
                if "optuna.trial" in r.data.tags]
    assert len(children) == TRIALS
    assert all(r.info.status == "FINISHED" and "test_accuracy" in r.data.metrics and "val_accuracy" in r.data.metrics
               for r in children)
