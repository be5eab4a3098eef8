"""Load check: 4 workers × 25 very short trials on one study, against a real PostgreSQL and MLflow server.

    .venv/bin/python tests/services.py -- .venv/bin/python bench/load_check.py [--workers 4] [--trials-per-worker 25]
    .venv/bin/python tests/services.py -- .venv/bin/python bench/load_check.py --trials-per-worker 250   # 1 000

Prints trials per minute, errors and lost trials/runs (target: 0 and 0). Exits non-zero if anything was lost, or if a
password of the servers (tests/services.py starts both asking for one) is in a worker's log or saved config.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeplab.names import KIND_TAG, PARENT_TAG, WORKER_ATTR

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# Very short trials: 1 epoch of the bundled digits on a 128-wide net, one thread per worker; the search alone (no
# confirmation runs), as when the figures in docs/benchmarks.md were first taken.
TRIAL = ("hydra.sweeper.confirm.top_k=0", "dataset=digits", "epochs=1", "model=ffn128", "threads=1", "progress=false")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--trials-per-worker", type=int, default=25)
    args = parser.parse_args()
    postgres, tracking = os.environ.get("SWEEPLAB_TEST_POSTGRES_URL"), os.environ.get("SWEEPLAB_TEST_MLFLOW_URL")
    if not (postgres and tracking):
        print("error: SWEEPLAB_TEST_POSTGRES_URL / SWEEPLAB_TEST_MLFLOW_URL are not set; run me as "
              "`.venv/bin/python tests/services.py -- .venv/bin/python bench/load_check.py`", file=sys.stderr)
        return 2
    n_trials = args.workers * args.trials_per_worker
    name = f"load-check-{uuid.uuid4().hex[:8]}"
    root = Path(tempfile.mkdtemp(prefix="sweeplab-load-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "MLFLOW_"))}
    # The workers log in as the runbook says: MLflow's user from the environment, the database's password from
    # PGPASSFILE (tests/services.py sets both). Servers without authentication ignore them.
    login = {f"MLFLOW_TRACKING_{k}": os.environ[f"SWEEPLAB_TEST_MLFLOW_{k}"] for k in ("USERNAME", "PASSWORD")
             if f"SWEEPLAB_TEST_MLFLOW_{k}" in os.environ}
    env.update(login)
    os.environ.update(login)  # this process reads the runs back as the same user

    began = time.monotonic()
    workers = []
    for i in range(args.workers):
        log = open(root / f"w{i}.log", "w")
        workers.append(subprocess.Popen(
            [sys.executable, "train.py", "-m", "hydra/sweeper=optuna", "hydra.sweeper.confirm.top_k=0", *TRIAL, f"hydra.sweeper.storage={postgres}",
             f"hydra.sweeper.study_name={name}", f"hydra.sweeper.n_trials={n_trials}",
             f"mlflow.tracking_uri={tracking}", f"mlflow.experiment={name}", f"hydra.sweep.dir={root}/w{i}"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        ))
    codes = [w.wait() for w in workers]
    wall_s = time.monotonic() - began

    trials = optuna.load_study(study_name=name, storage=postgres).get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in FINISHED]
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=5000) if experiment else []
    parents = [r for r in runs if r.data.tags.get(KIND_TAG) == "study"]
    parent_ids = {r.info.run_id for r in parents}
    children = [r for r in runs if r.data.tags.get(PARENT_TAG) in parent_ids]
    child_trials = {r.data.tags.get("optuna.trial") for r in children}
    trial_numbers = {str(t.number) for t in finished}
    complete = {t.number for t in finished if t.state == TrialState.COMPLETE}
    with_metric = {int(r.data.tags["optuna.trial"]) for r in children if "best_val_accuracy" in r.data.metrics}

    usable = usability(client, experiment, parents, children)
    logs = "".join((root / f"w{i}.log").read_text(errors="replace") for i in range(args.workers))
    saved = logs + "".join(p.read_text(errors="replace") for p in root.rglob("*.yaml"))  # Hydra's, the results'
    first = min(t.datetime_start for t in finished)
    last = max(t.datetime_complete for t in finished)
    steady_s = (last - first).total_seconds()
    by_worker = {}
    for t in finished:
        by_worker[t.user_attrs.get(WORKER_ATTR)] = by_worker.get(t.user_attrs.get(WORKER_ATTR), 0) + 1

    lost_trials = n_trials - len(finished) + sum(t.state == TrialState.RUNNING for t in trials)
    lost_runs = (len(finished) - len(children)) + len(complete - with_metric)
    errors = {
        "workers exiting non-zero": sum(code != 0 for code in codes),
        "FAIL trials": sum(t.state == TrialState.FAIL for t in finished),
        "tracebacks in worker logs": logs.count("Traceback"),
        "HTTP retries in worker logs": logs.count("Retrying (Retry("),
        "duplicate trial numbers": len(finished) - len({t.number for t in finished}),
        "duplicate parameter sets": len(finished) - len({tuple(sorted(t.params.items())) for t in finished}),
        "MLflow parent runs other than 1": abs(len(parents) - 1),
        "passwords in worker logs or saved configs": sum(password in saved for password in passwords()),
        "MLflow child runs for no trial or twice": len(children) - len(child_trials & trial_numbers),
    }
    rows = {
        "trials finished": f"{len(finished)} / {n_trials} ({len(complete)} complete, "
                           f"{sum(t.state == TrialState.PRUNED for t in finished)} pruned)",
        "trials per worker": " ".join(str(n) for n in sorted(by_worker.values(), reverse=True)),
        "wall time": f"{wall_s:.1f} s (workers' start-up and final report included)",
        "trials per minute, overall": f"{len(finished) / wall_s * 60:.1f}",
        "trials per minute, first start to last end": f"{len(finished) / steady_s * 60:.1f}",
        "MLflow runs": f"{len(parents)} parent, {len(children)} children, {len(with_metric)} with best_val_accuracy",
        **usable,
        **{what: str(count) for what, count in errors.items()},
        "lost trials": str(lost_trials),
        "lost runs": str(lost_runs),
    }
    print(f"Load check: {args.workers} workers × {args.trials_per_worker} trials on one study ({name}): digits, "
          f"1 epoch, ffn128, 1 thread per worker, {os.cpu_count()} CPU cores")
    for what, value in rows.items():
        print(f"  {what:<44} {value}")
    print(f"  {'worker logs':<44} {root}")
    leaked = errors["passwords in worker logs or saved configs"]
    return 1 if lost_trials or lost_runs or leaked or errors["workers exiting non-zero"] else 0


def usability(client: MlflowClient, experiment, parents: list, children: list) -> dict[str, str]:
    """How a large study reads back: the parent run (its page) and a search of the children by a value that varies
    (docs/sweeps.md's search string), timed."""
    if not (experiment and parents and children):
        return {}
    started = time.perf_counter()
    parent = client.get_run(parents[0].info.run_id)
    parent_s = time.perf_counter() - started
    batch_size = children[0].data.params.get("batch_size")
    started = time.perf_counter()
    found = client.search_runs([experiment.experiment_id], max_results=5000, filter_string=(
        f"tags.`{PARENT_TAG}` = '{parent.info.run_id}' and params.batch_size = '{batch_size}'"))
    search_s = time.perf_counter() - started
    expected = sum(r.data.params.get("batch_size") == batch_size for r in children)
    return {"parent run read": f"{parent_s:.2f} s ({len(parent.data.params)} params, {len(parent.data.metrics)} "
                               f"metrics)",
            f"children found by params.batch_size = '{batch_size}'": f"{len(found)} of {expected} in {search_s:.2f} s"}


def passwords() -> list[str]:
    """The servers' passwords this run knows of: MLflow's in the environment, the database's in PGPASSFILE."""
    found = [v for k, v in os.environ.items() if k.startswith("SWEEPLAB_TEST_") and k.endswith("PASSWORD")]
    if os.environ.get("PGPASSFILE") and Path(os.environ["PGPASSFILE"]).exists():
        found += [line.split(":", 4)[4] for line in Path(os.environ["PGPASSFILE"]).read_text().splitlines()]
    return found


if __name__ == "__main__":
    sys.exit(main())
