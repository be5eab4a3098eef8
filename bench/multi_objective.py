"""The notes' trade-off, swept: the default two-objective sweep (validation accuracy against training time) and the
default single-objective sweep, on the same data, seed and machine; their confirmed answers in the same space.

    python bench/multi_objective.py                  # Fashion-MNIST, 10 epochs, 25 search trials each (~1 h, 2 cores)
    python bench/multi_objective.py --quick          # digits, 2 epochs, 6 trials: a smoke run of a minute or two
    python bench/multi_objective.py --device cuda    # the same on a GPU

Prints the two-objective sweep's confirmed front (each configuration's accuracy and time, mean ± SE over the search
seed and the fresh confirmation seeds), the single-objective sweep's confirmed best with its time, and the
hypervolume of each (accuracy up, time down) against one reference point: the baseline's confirmed accuracy minus
1 pp and 1.1 x the slowest confirmed time. Writes the front's figure, the single answer marked, beside it
(--out, default multi_objective.png). Timing on a shared machine is noisy: run it on a quiet one.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweeplab.names import CONFIRMS_ATTR, JOURNAL_FILE, RESULTS_FILE

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from multi_objective_samplers import hypervolume  # noqa: E402


def sweep(name: str, workdir: Path, overrides: list[str]) -> tuple[dict, list, float]:
    """Run one sweep; its results file, every trial of its journal (confirmation trials included), its wall time."""
    sweep_dir = workdir / name
    command = [sys.executable, str(ROOT / "train.py"), "-m", "hydra/sweeper=optuna", f"hydra.sweeper.study_name={name}",
               f"hydra.sweep.dir={sweep_dir}", f"mlflow.tracking_uri=sqlite:///{workdir}/mlflow.db",
               f"mlflow.artifact_location={workdir}/mlruns", "progress=false", *overrides]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"sweep {name} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    print(result.stdout.strip().split("\n", 1)[-1], flush=True)
    storage = JournalStorage(JournalFileBackend(str(sweep_dir / JOURNAL_FILE)))
    trials = [t for s in optuna.get_all_study_names(storage)
              for t in optuna.load_study(study_name=s, storage=storage).get_trials(deepcopy=False)]
    return yaml.safe_load((sweep_dir / RESULTS_FILE).read_text()), trials, wall


def seconds_of(trials, source: int) -> list[float]:
    """Training times of a configuration: its search trial's and its confirmation trials'."""
    return [t.user_attrs["train_time_s"] for t in trials if "train_time_s" in t.user_attrs and
            (t.user_attrs.get(CONFIRMS_ATTR) == source or (t.number == source and CONFIRMS_ATTR not in t.user_attrs))]


def mean_se(values: list[float]) -> tuple[float, float]:
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")
    return statistics.fmean(values), se


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits, 2 epochs, 6 trials, confirm 2 x 1 seed")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("multi_objective.png"))
    args = parser.parse_args()
    common = [f"device={args.device}", f"seed={args.seed}"]
    common += (["dataset=digits", "epochs=2", "hydra.sweeper.n_trials=6", "hydra.sweeper.confirm.top_k=2",
                "hydra.sweeper.confirm.seeds=1"] if args.quick else ["dataset=fashion_mnist"])
    with tempfile.TemporaryDirectory() as tmp:
        front, front_trials, front_wall = sweep("accuracy-vs-time", Path(tmp), [*common, "objective=accuracy_vs_time"])
        single, single_trials, single_wall = sweep("accuracy", Path(tmp), common)
        figure = _figure(Path(tmp), front, args.seed)
    points = front["confirmed"]
    baseline = next(p for p in points if p["baseline"])
    best = single["confirmed"]["best"]
    best_time = mean_se(seconds_of(single_trials, best["trial"]))
    slowest = max([p["mean"]["train_time_s"] for p in points] + [best_time[0]])
    reference = (100 * baseline["mean"]["val_accuracy"] - 1.0, 1.1 * slowest)
    on_front = [(100 * p["mean"]["val_accuracy"], p["mean"]["train_time_s"]) for p in front["confirmed_front"]]
    front_hv = hypervolume(on_front, reference)
    single_hv = hypervolume([(100 * best["mean"], best_time[0])], reference)

    print(f"\n### Two objectives (val_accuracy up, train_time_s down), {'quick' if args.quick else 'Fashion-MNIST'}, "
          f"{args.device}, seed {args.seed}\n")
    print("| sweep | configuration | val accuracy, % | train time, s | on the front | beats beyond noise |")
    print("|---|---|---:|---:|---|---|")
    for p in points:
        print(f"| accuracy_vs_time | {_params(p['params'])}{' (baseline)' if p['baseline'] else ''} | "
              f"{_pct(p['mean']['val_accuracy'], p['se']['val_accuracy'])} | "
              f"{_s(p['mean']['train_time_s'], p['se']['train_time_s'])} | {'yes' if p['on_front'] else 'no'} | "
              f"{'; '.join(f'#{k}: ' + ', '.join(v) for k, v in p['beats_beyond_noise'].items()) or '-'} |")
    print(f"| accuracy (one objective) | {_params(best['params'])} | {_pct(best['mean'], best['se'])} | "
          f"{_s(*best_time)} | - | - |")
    print(f"\nhypervolume against ({reference[0]:.2f} %, {reference[1]:.1f} s): front {front_hv:.2f}, single answer "
          f"{single_hv:.2f} ({front_hv / single_hv:.2f}x); sweeps took {front_wall:.0f} s and {single_wall:.0f} s"
          if single_hv else f"\nhypervolume: front {front_hv:.2f}, single answer 0 (below the reference)")
    figure.axes[0].errorbar(best_time[0], best["mean"], xerr=_bar(best_time[1]), yerr=_bar(best["se"]), fmt="s",
                            ms=8, capsize=3, color="royalblue", label="one-objective answer (mean ± SE)", zorder=7)
    figure.axes[0].legend(fontsize=7)
    figure.savefig(args.out, dpi=100, bbox_inches="tight")
    print(f"figure: {args.out}")


def _figure(workdir: Path, results: dict, seed: int):
    from sweeplab.sweep.pareto import confirmed_front
    from sweeplab.sweep.pareto_figure import pareto_figure

    storage = JournalStorage(JournalFileBackend(str(workdir / "accuracy-vs-time" / JOURNAL_FILE)))
    study = optuna.load_study(study_name="accuracy-vs-time", storage=storage)
    metrics = [o["metric"] for o in results["objectives"]]
    return pareto_figure(study, metrics, confirmed_front(study, seed, metrics))


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _pct(mean, se) -> str:
    return f"{100 * mean:.2f} ± {100 * se:.2f}" if se is not None and se == se else f"{100 * mean:.2f}"


def _s(mean, se) -> str:
    return f"{mean:.2f} ± {se:.2f}" if se is not None and se == se else f"{mean:.2f}"


def _bar(se):
    return None if se is None or se != se else se


if __name__ == "__main__":
    main()
