"""Per-trial overhead of a sweep: where the time of short trials goes besides their training epochs.

    python bench/trial_overhead.py                       # 30 one-epoch digits trials, TPE, search only
    python bench/trial_overhead.py --trials 100 --repeats 3
    mkdir /tmp/before && git archive COMMIT | tar -x -C /tmp/before
    python bench/trial_overhead.py --baseline /tmp/before  # before / after, sweeps alternating, same machine load
    python bench/trial_overhead.py --trials 32 --epochs 5 --population 32   # a population's per-epoch bookkeeping

Runs the real `train.py -m hydra/sweeper=optuna` (sampler TPE, so that the GP sampler's own cost is not mixed in;
no confirmation; one thread; the basic launcher, which runs the trials in the sweep's process) in a fresh folder
with a copy of an MLflow store whose tables exist (as for every sweep after a user's first), and reads the sections that sweeplab.timing writes when SWEEPLAB_TIMINGS is set:

    sampler     the trial loop's ask: the study's bookkeeping, the sampler, the suggested values, the overrides
    launch      Hydra's per-job work in the basic launcher: composing the job's config, output folder, logging
    setup       the job's data and model (and optimizer)
    tracking    the MLflow run: client, run, params, tags, dataset, per-epoch metrics, artifacts, status
    optuna      the job's link to its trial: the study opened, per-epoch reports, attributes, and the tell
    epochs      the training epochs, validation included (what the overhead is measured against)
    evaluation  the test pass on the best epoch's weights
    checkpoint  the best weights saved to the trial's folder
    job-other   the rest of the job function (settings, logging, imports on the first trial)
    fixed       the sweep's own start and end (interpreter, imports, plan, parent run, report) and its first trial
                (imports, warm-up), spread over the trials; the other sections are means over the later trials

"overhead" is the sweep's wall time minus its training epochs, per trial (the figure issue 22 asks ≤ 0.1 s for);
CPU is the sweep process's user + system time. The store's size per trial (mlflow.db, optuna.journal, mlruns) is
measured at the end of each sweep. A baseline tree without sweeplab.timing shows wall, CPU and sizes only.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IN_JOB = ["setup", "tracking", "optuna", "epochs", "evaluation", "checkpoint"]
KEYS = ["sampler", "launch", *IN_JOB, "job-other", "fixed"]


def sweep_command(python: str, root: Path, workdir: Path, trials: int, epochs: int, population: int = 1) -> list[str]:
    return [
        python, str(root / "train.py"), "-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=tpe",
        "dataset=digits", f"epochs={epochs}", f"hydra.sweeper.n_trials={trials}", "hydra.sweeper.confirm.top_k=0",
        "threads=1", "progress=false", "hydra.sweeper.study_name=overhead", f"hydra.sweep.dir={workdir}/sweep",
        f"mlflow.tracking_uri=sqlite:///{workdir}/mlflow.db", f"mlflow.artifact_location={workdir}/mlruns",
        *([f"hydra.sweeper.population={population}"] if population > 1 else []),
    ]


def empty_store(python: str, folder: Path) -> Path:
    """An MLflow store with its tables made: a user's sweeps after the first (creating them takes seconds)."""
    path = folder / "empty-mlflow.db"
    subprocess.run([python, "-c", f"from mlflow.tracking import MlflowClient; "
                    f"MlflowClient('sqlite:///{path}').search_experiments()"], check=True, capture_output=True)
    return path


def run_sweep(python: str, root: Path, trials: int, epochs: int, store: Path, population: int = 1) -> dict:
    """One sweep in a fresh folder: wall, CPU, per-trial sections (if the tree writes them) and store sizes."""
    with tempfile.TemporaryDirectory(prefix="sweeplab-overhead-") as folder:
        workdir = Path(folder)
        shutil.copy(store, workdir / "mlflow.db")
        timings = workdir / "timings.jsonl"
        env = {**os.environ, "SWEEPLAB_TIMINGS": str(timings), "PYTHONPATH": str(root / "src")}
        started = time.perf_counter()
        process = subprocess.Popen(sweep_command(python, root, workdir, trials, epochs, population), cwd=root, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status):
            sys.exit(f"sweep in {root} failed ({os.waitstatus_to_exitcode(status)}):\n{stderr[-3000:]}")
        result = {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "trials": trials,
                  **store_sizes(workdir, trials, store.stat().st_size)}
        if timings.exists():
            result["sections"] = breakdown(timings.read_text().splitlines(), trials, wall)
            result["overhead_s"] = (wall - result["sections"]["epochs_total"]) / trials
        return result


def breakdown(lines: list[str], trials: int, wall: float) -> dict:
    """Seconds per trial of each section, from the JSON lines of sweeplab.timing (several lines per trial): the
    mean over the trials after the first (the first one also imports and warms up: it counts as fixed), wall and
    CPU (``cpu.<section>``)."""
    per_trial = defaultdict(lambda: defaultdict(float))
    for line in lines:
        record = json.loads(line)
        key = record.pop("key")
        for name, seconds in record.items():
            per_trial[key][name] += seconds
    steady = [sections for key, sections in sorted(per_trial.items(), key=lambda item: _number(item[0]))][1:]
    result = {}
    for prefix in ("", "cpu."):  # the epochs are timed in wall seconds only: in CPU, job-other holds them
        totals = defaultdict(float)
        for sections in steady:
            def get(name):
                return sections.get(prefix + name, 0.0)
            job = get("job")
            totals["launch"] += get("launch") - job
            totals["job-other"] += job - sum(get(k) for k in IN_JOB)
            for name in ("sampler", *IN_JOB):
                totals[name] += get(name)
        for name in KEYS[:-1]:
            result[prefix + name] = totals[name] / max(1, len(steady))
    del result["cpu.epochs"]
    epochs = sum(sections.get("epochs", 0.0) for sections in per_trial.values())
    in_steady_trials = sum(result[k] for k in KEYS[:-1] if k != "epochs") * len(steady)
    result["fixed"] = (wall - epochs - in_steady_trials) / trials  # start-up, first trial, end: spread over all
    first = min(per_trial.items(), key=lambda item: _number(item[0]))[1]
    result["first_trial_s"] = sum(first.get(k, 0.0) for k in ("sampler", "launch", "optuna"))
    result["start_and_end_s"] = wall - sum(sum(t.get(k, 0.0) for k in ("sampler", "launch", "optuna"))
                                           for t in per_trial.values())
    result["epochs_total"] = epochs
    for name in ("tracking", "optuna", "setup"):  # whole-sweep sums: a population job's members share one record
        result[f"total.{name}"] = sum(sections.get(name, 0.0) for sections in per_trial.values())
    return result


def _number(key: str) -> int:
    """A record's trial number: its key is the trial's number, or a population job's folder (population-<number>)."""
    return int(key.rpartition("-")[2])


def store_sizes(workdir: Path, trials: int, empty_db: int) -> dict:
    def size(path: Path) -> int:
        if path.is_file():
            return path.stat().st_size
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0

    return {"mlflow_db_bytes": (size(workdir / "mlflow.db") - empty_db) / trials,
            "journal_bytes": size(workdir / "sweep" / "optuna.journal") / trials,
            "mlruns_bytes": size(workdir / "mlruns") / trials}


def summary(label: str, results: list[dict], population: int = 1) -> list[str]:
    def mean(key, inner=None):
        values = [r[key][inner] if inner else r[key] for r in results if key in r]
        return statistics.median(values) if values else None

    lines = [f"== {label}: {len(results)} sweep(s) of {results[0]['trials']} trials (medians)"]
    n = results[0]["trials"]
    wall, cpu = mean("wall_s"), mean("cpu_s")
    lines.append(f"  wall {wall:7.2f} s  ({wall / n:.3f} s per trial)   CPU {cpu:7.2f} s  ({cpu / n:.3f} s per trial)")
    if mean("overhead_s") is not None and population > 1:  # members share their job's records and epochs
        lines.append("  whole sweep, wall s: " + "  ".join(f"{k} {mean('sections', 'total.' + k):.2f}"
                                                           for k in ("tracking", "optuna", "setup")))
    elif mean("overhead_s") is not None:
        lines.append(f"  overhead (wall minus epochs) per trial: {mean('overhead_s'):.3f} s")
        lines.append("  per trial, wall s: " + "  ".join(f"{k} {mean('sections', k):.4f}" for k in KEYS))
        lines.append("  per trial, CPU s:  " + "  ".join(
            f"{'job-other (epochs included)' if k == 'job-other' else k} {mean('sections', 'cpu.' + k):.4f}"
            for k in KEYS[:-1] if k != "epochs"))
        lines.append(f"  fixed: first trial {mean('sections', 'first_trial_s'):.2f} s, the sweep's start and end "
                     f"(interpreter, imports, plan, parent run, report) {mean('sections', 'start_and_end_s'):.2f} s")
        loop = sum(mean("sections", k) for k in KEYS[:-1] if k != "epochs")
        lines.append(f"  in the loop (every trial after the first, epochs left out): {loop:.3f} s per trial")
        lines.append("  whole sweep, wall s: " + "  ".join(f"{k} {mean('sections', 'total.' + k):.2f}"
                                                           for k in ("tracking", "optuna", "setup")))
    lines.append(f"  store per trial: mlflow.db {mean('mlflow_db_bytes') / 1024:.1f} KiB, optuna.journal "
                 f"{mean('journal_bytes') / 1024:.1f} KiB, mlruns {mean('mlruns_bytes') / 1024:.1f} KiB")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--baseline", type=Path, help="another sweeplab tree (e.g. from git archive) to compare")
    parser.add_argument("--population", type=int, default=1,
                        help="trials per stacked job (hydra.sweeper.population): the members' per-epoch bookkeeping")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--json", type=Path, help="also write every sweep's figures here")
    args = parser.parse_args()
    trees = {"this tree": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    results = {label: [] for label in trees}
    with tempfile.TemporaryDirectory(prefix="sweeplab-overhead-") as folder:
        store = empty_store(args.python, Path(folder))
        for _ in range(args.repeats):  # alternate, so that both see the same machine load
            for label, root in trees.items():
                results[label].append(run_sweep(args.python, root, args.trials, args.epochs, store, args.population))
    for label in trees:
        print("\n".join(summary(label, results[label], args.population)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
