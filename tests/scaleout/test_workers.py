"""Several workers, one study: PostgreSQL coordinates the trials, one MLflow server records them, under faults."""
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sqlalchemy.engine import make_url

from sweeplab.sweep import parent_run
from sweeplab.sweep.storage import open_storage
from sweeplab.sweep.study import WORKER_ATTR, reap_dead_trials, started
from sweeplab.sweep.trial_link import RUN_ID_ATTR, Heartbeat
from sweeplab.sweep.trial_loop import within_total

from .conftest import FINISHED, PROJECT_ROOT, check_study, closed_port, services
from sweeplab.names import STATE_TAG

pytestmark = pytest.mark.slow


def test_three_workers_finish_one_study_together(study):
    n_trials, epochs = 9, 3
    workers = [
        study.start(f"w{i}", f"hydra.sweeper.n_trials={n_trials}", f"epochs={epochs}", "hydra/sweeper/pruner=median",
                    "hydra.sweeper.pruner.n_startup_trials=3")
        for i in range(3)
    ]
    for worker in workers:
        assert worker.wait() == 0, worker.log()[-3000:]

    finished, _ = check_study(study, n_trials)
    # Each worker ran some of the trials (their pids are on the trials they claimed) ...
    owners = {t.user_attrs[WORKER_ATTR] for t in finished}
    assert len(owners) >= 2, owners
    # ... and every epoch of every trial reached the shared storage, where the pruner reads it.
    for trial in finished:
        expected = epochs if trial.state == TrialState.COMPLETE else len(trial.intermediate_values)
        assert sorted(trial.intermediate_values) == list(range(1, expected + 1)), trial.number
        assert expected >= 1
    for worker in workers:  # each worker's summary counts the whole study
        assert f"Study {study.name}: {n_trials} trials" in worker.log()


def test_two_workers_share_a_study_in_populations(study):
    """Each worker trains populations of three trials (one stacked job each) against the shared PostgreSQL study."""
    n_trials = 6
    workers = [study.start(f"w{i}", f"hydra.sweeper.n_trials={n_trials}", "epochs=2", "hydra.sweeper.population=3",
                           "~hydra.sweeper.params.batch_size")  # one batch size: each worker's trials fill a stack
               for i in range(2)]
    for worker in workers:
        assert worker.wait() == 0, worker.log()[-3000:]
    finished, _ = check_study(study, n_trials)
    assert {t.state for t in finished} == {TrialState.COMPLETE}
    assert "members differ in optimizer.lr" in workers[0].log()
    # the stacked training's own log line, from a population job of either worker
    assert any(re.search(r"epoch 1/2: [23] members", worker.log()) for worker in workers)


def test_pruner_sees_the_other_workers_values(study):
    """A trial from 'another worker' reached 100 % at every epoch: the median pruner must stop this worker's trials
    after their first epoch, which it can only do by reading that trial from the shared storage."""
    storage = study.storage()
    shared = optuna.create_study(study_name=study.name, storage=storage, direction="maximize")
    shared.add_trial(optuna.trial.create_trial(
        value=1.0, intermediate_values={1: 1.0, 2: 1.0},
        params={"batch_size": 64}, distributions={"batch_size": optuna.distributions.CategoricalDistribution(
            [16, 32, 64, 128, 256, 512])},
    ))
    code, log = study.run(
        "w0", "hydra.sweeper.n_trials=3", "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.pruner.n_warmup_steps=0", "mlflow.enabled=false",
    )
    assert code == 0, log[-3000:]
    mine = [t for t in study.study().trials if t.number > 0]
    assert [t.state for t in mine] == [TrialState.PRUNED, TrialState.PRUNED], log[-3000:]
    assert all(list(t.intermediate_values) == [1] for t in mine)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # catch_warnings is not thread-safe
def test_workers_starting_together_on_a_new_database_all_open_it(servers):
    """Optuna creates its tables on first use; four workers doing that at the same moment collide in PostgreSQL
    (a unique violation), and the losers must try again instead of stopping with an error."""
    port = make_url(servers.postgres).port
    database = services.create_database(services.postgres_bindir(), port, f"fresh_{uuid.uuid4().hex[:8]}")
    errors = []

    def open_it():
        try:
            open_storage(database)
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_trials_asked_past_the_total_go_back_to_the_queue(study):
    """Two workers that both counted one trial to go ask two: the one numbered past n_trials is surplus. It goes back
    to WAITING (not started, not counted), and a resume with a larger total runs it under its number."""
    shared = optuna.create_study(study_name=study.name, storage=study.storage(), direction="maximize")
    first, second, racer = shared.ask(), shared.ask(), shared.ask()
    kept = [t for t in (first, second, racer) if within_total(shared, t, 2)]
    assert kept == [first, second]
    assert shared.trials[racer.number].state == TrialState.WAITING and started(shared) == 2
    assert shared.ask().number == racer.number  # the next ask, e.g. of a resume with n_trials=3, takes it back


def test_sigkilled_worker_trial_fails_and_a_restarted_worker_rejoins(study):
    n_trials = 12  # enough that the restarted worker finds trials left to run
    beat = {"SWEEPLAB_HEARTBEAT_S": "2"}  # stale after 8 s instead of 40 s
    # Trials long enough to kill the victim in the middle of one; the same for every worker (epochs are part of the
    # study's question: a worker with other epochs would be refused).
    common = (f"hydra.sweeper.n_trials={n_trials}", "epochs=30")
    victim = study.start("victim", *common, env=beat)
    others = [study.start("w0", *common, env=beat)]

    def victims_running_trial():
        for t in study.study().get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get(WORKER_ATTR, "").endswith(f":{victim.pid}") and t.intermediate_values:
                return t  # its job is training (an epoch reported) and has its MLflow run

    killed = study.wait_for(lambda: study.exists() and victims_running_trial(), 300, "a running trial of the victim",
                            poll_s=0.1)
    assert killed.user_attrs.get(RUN_ID_ATTR)
    os.killpg(victim.pid, signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    rejoined = study.start("restarted", *common, env=beat)  # the same command again

    for worker in [*others, rejoined]:
        assert worker.wait() == 0, worker.log()[-3000:]
    finished, children = check_study(study, n_trials)
    dead = study.study().trials[killed.number]
    assert dead.state == TrialState.FAIL
    assert children[killed.number].info.status == "FAILED"
    assert children[killed.number].data.tags[STATE_TAG] == "FAIL"
    assert f"Study {study.name}: {n_trials} trials" in rejoined.log()
    assert any(t.user_attrs[WORKER_ATTR].endswith(f":{rejoined.pid}") for t in finished), "it ran no trial"


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_stale_heartbeat_fails_a_trial_of_a_worker_on_another_host(study, monkeypatch):
    """Across machines no process can be checked for life: only the heartbeat tells. A trial whose heartbeat stopped
    is FAIL after the grace period (4 intervals); one whose worker keeps beating is left alone."""
    monkeypatch.setenv("SWEEPLAB_HEARTBEAT_S", "1")
    failed = []  # the sweeper hands its on_failed to the storage like this (it ends the trial's MLflow run)
    storage = open_storage(study.servers.postgres, stale_trial_callback=lambda s, t: failed.append(t.number))
    shared = optuna.create_study(study_name=study.name, storage=storage, direction="maximize")
    dead, alive, done = shared.ask(), shared.ask(), shared.ask()
    for trial in (dead, alive, done):
        trial.set_user_attr(WORKER_ATTR, "another-host:4242")  # not this host: its pid cannot be checked
    client = study.client()  # done's job ended its run; its worker died before telling Optuna
    experiment = client.create_experiment(f"stale-{uuid.uuid4().hex[:8]}")
    done_run = client.create_run(experiment, tags={STATE_TAG: "COMPLETE"}).info.run_id
    client.log_metric(done_run, "best_val_accuracy", 0.75)
    client.set_terminated(done_run, "FINISHED")
    done.set_user_attr(RUN_ID_ATTR, done_run)
    with Heartbeat(storage, [dead._trial_id, done._trial_id]):
        pass  # one beat, then silence, as when its worker is SIGKILLed
    with Heartbeat(storage, [alive._trial_id]):
        time.sleep(5.5)  # > the 4 s grace period
        reaped = reap_dead_trials(shared, on_failed=lambda s, t: failed.append(t.number), recover=lambda s, t: (
            parent_run.recorded_result(client, t, ("val_accuracy",))))
    assert reaped == [dead.number] and failed == [dead.number]
    assert shared.trials[dead.number].state == TrialState.FAIL
    assert shared.trials[alive.number].state == TrialState.RUNNING
    assert shared.trials[done.number].state == TrialState.COMPLETE and shared.trials[done.number].value == 0.75


@pytest.mark.parametrize("server", ["postgres", "mlflow"])
def test_unreachable_server_at_start_is_one_line_naming_it(study, server):
    port = closed_port()
    uri = f"postgresql://postgres@127.0.0.1:{port}/optuna" if server == "postgres" else f"http://127.0.0.1:{port}"
    argv = study.argv("w0", "hydra.sweeper.n_trials=2")
    argv = [a.replace(study.servers.postgres if server == "postgres" else study.servers.mlflow, uri) for a in argv]
    result = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
                            env={k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "MLFLOW_"))})
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:") and f"127.0.0.1:{port}" in errors[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "Launching" not in result.stdout + result.stderr  # before any trial
    assert not study.exists()  # nothing half-made in the database either


def test_mlflow_server_restart_mid_sweep_loses_no_trial(study, tmp_path):
    """A second MLflow server on the same PostgreSQL database is stopped and started again while a sweep logs to it:
    the MLflow client's retries carry the sweep over the gap, and every trial keeps its child run and metrics."""
    backend = study.servers.mlflow_backend
    assert backend, "SWEEPLAB_TEST_MLFLOW_BACKEND_URL is not set: run the tests through tests/services.py"
    port = closed_port()
    server = services.start_mlflow(backend, tmp_path / "artifacts", port, tmp_path / "mlflow-1.log")
    n_trials = 6
    try:
        worker = study.start("w0", f"hydra.sweeper.n_trials={n_trials}", f"mlflow.tracking_uri=http://127.0.0.1:{port}",
                             "epochs=20")
        study.wait_for(lambda: study.exists() and len(study.study().get_trials(states=FINISHED)) >= 2, 300,
                       "two finished trials")
        services.stop(server)
        down = time.monotonic()
        time.sleep(2)
        server = services.start_mlflow(backend, tmp_path / "artifacts", port, tmp_path / "mlflow-2.log")
        print(f"MLflow server was down for {time.monotonic() - down:.1f} s")
        assert worker.wait() == 0, worker.log()[-3000:]
    finally:
        services.stop(server)
    finished, _ = check_study(study, n_trials)  # read through the main server: same database
    assert all(t.state == TrialState.COMPLETE for t in finished)


def test_postgres_restart_mid_sweep_loses_no_trial(study, servers):
    """A PostgreSQL of this test's own, restarted (fast shutdown, start again) while a worker sweeps on it: new
    connections wait for the server to be back, pool_pre_ping drops the dead ones, and every trial completes."""
    bindir = services.postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="sweeplab-pg-"))  # not under pytest's tmp: the postgres user must reach it
    port = closed_port()
    server = services.start_postgres(bindir, root / "pgdata", port)
    n_trials = 6
    try:
        storage = services.create_database(bindir, port, "optuna")
        study.servers = SimpleNamespace(**{**vars(servers), "postgres": storage})  # this study lives on that server
        worker = study.start("w0", f"hydra.sweeper.n_trials={n_trials}", "epochs=20")
        study.wait_for(lambda: study.exists() and len(study.study().get_trials(states=FINISHED)) >= 2, 300,
                       "two finished trials")
        services.stop(server)
        time.sleep(3)
        server = services.start_postgres(bindir, root / "pgdata", port)
        assert worker.wait() == 0, worker.log()[-3000:]
        finished, _ = check_study(study, n_trials)
        assert all(t.state == TrialState.COMPLETE for t in finished)
    finally:
        study._storage = None
        services.stop(server)
        shutil.rmtree(root, ignore_errors=True)


def claim_best_model(tracking_uri: str, run_id: str, ready, claims) -> None:
    """One worker, stopping: may it log the best trial's model?"""
    client = MlflowClient(tracking_uri)
    ready.wait()  # all workers at the same moment
    claims.put(parent_run._claim_model(client, run_id, 3))


def test_of_workers_stopping_together_one_logs_the_best_model(servers):
    client = MlflowClient(servers.mlflow)
    experiment_id = client.create_experiment(f"claim-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment_id).info.run_id
    processes = multiprocessing.get_context("spawn")
    ready, claims = processes.Barrier(4), processes.Queue()
    workers = [processes.Process(target=claim_best_model, args=(servers.mlflow, run_id, ready, claims))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert sorted(claims.get(timeout=5) for _ in workers) == [False, False, False, True]
    assert list(client.get_run(run_id).data.params) == ["best_model.trial_3.logged_by"]
