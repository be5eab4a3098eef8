"""Which sampler finds the best accuracy-against-time front in 25 search trials?  Simulated two-objective sweeps over
the stored landscape (bench/landscape.py): no training, CPU only.

    python bench/multi_objective_samplers.py                 # 64 studies x 5 samplers (GP's fits dominate)
    python bench/multi_objective_samplers.py --studies 8     # a quick look

Each study maximises validation accuracy and minimises training time over the default search space (batch_size
choice(16..512), lr log-uniform 1e-4..1e-1), the notes' batch 128 / Adam 1e-3 enqueued as trial 0. A trial's
accuracy is its landscape seed's value at the nearest grid point (as bench/samplers.py); its time is a model, since
the landscape holds no timings: 10 epochs of `a + s / batch_size` seconds (a per-sample part and a per-step part,
fitted to this 2-core machine's Fashion-MNIST epochs: 0.56 s at batch 128, a batch-16 epoch ~11x a batch-512 one —
/work/shared/GUIDE.md), times log-normal noise of --time-noise (timing on a shared machine is noisy).

Score: the hypervolume of the front's configurations at their TRUE values (mean accuracy over all 16 seeds, the
noiseless time), as a share of the whole grid's true front's hypervolume, against the reference point (the baseline's
true accuracy minus 1 pp, 1.1 x the slowest time). Two fronts per study: the search's (non-dominated by the noisy values
it saw) and the confirmed one (sweeplab's rule: up to top_k=3 points spanning the front and the baseline, their
means over the search seed and 2 fresh ones, non-dominated). Higher is better; 1.0 = the ideal front.
"""
import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np
import optuna

from _landscape_oracle import BATCH_SIZES, SPACE, Landscape
from landscape import NOTES

HERE = Path(__file__).parent
EPOCHS, PER_EPOCH_S, PER_STEP_S = 10, 0.193, 0.0918 * 512  # epoch time = PER_EPOCH_S + PER_STEP_S / batch_size


def samplers():
    s = optuna.samplers
    return {
        "tpe-mv-cl": lambda seed: s.TPESampler(multivariate=True, constant_liar=True, seed=seed),  # sweeplab's tpe
        "tpe": lambda seed: s.TPESampler(seed=seed),
        "gp": lambda seed: s.GPSampler(seed=seed),
        "nsgaii": lambda seed: s.NSGAIISampler(seed=seed),  # population_size=50: 25 trials are its first generation
        "nsgaii-pop8": lambda seed: s.NSGAIISampler(population_size=8, seed=seed),
        "random": lambda seed: s.RandomSampler(seed=seed),
    }


def true_time(batch_index: int) -> float:
    return EPOCHS * (PER_EPOCH_S + PER_STEP_S / BATCH_SIZES[batch_index])


def run_study(land, name, seed, table, n_trials, time_noise):
    """One sequential study; returns each trial's grid point and the (accuracy, time) it was told."""
    rng = np.random.default_rng(10_000 + seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=samplers()[name](seed))
        study.enqueue_trial({"batch_size": NOTES[0], "optimizer.lr": NOTES[1]})
        points, told = [], []
        for _ in range(n_trials):
            trial = study.ask(SPACE)
            point = land.snap(trial.params["batch_size"], trial.params["optimizer.lr"])
            values = (float(land.val[table][point]), true_time(point[0]) * math.exp(rng.normal(0, time_noise)))
            study.tell(trial, values)
            points.append(point)
            told.append(values)
    return points, told


def non_dominated(values):
    """Indices of the (accuracy up, time down) pairs no other pair dominates."""
    return [i for i, (a, t) in enumerate(values)
            if not any(a2 >= a and t2 <= t and (a2 > a or t2 < t) for a2, t2 in values)]


def hypervolume(values, reference):
    """2-D hypervolume of (accuracy up, time down) pairs against reference (worst accuracy, worst time)."""
    front = sorted({values[i] for i in non_dominated(values)}, key=lambda v: v[1])  # fastest first
    volume, best_accuracy = 0.0, reference[0]
    for i, (accuracy, seconds) in enumerate(front):
        upto = front[i + 1][1] if i + 1 < len(front) else reference[1]
        best_accuracy = max(best_accuracy, accuracy)
        volume += max(0.0, best_accuracy - reference[0]) * max(0.0, upto - seconds)
    return volume


def spread(front_points, k):
    """sweeplab.sweep.pareto.spread on grid points ordered by accuracy: both ends, then evenly between."""
    if k >= len(front_points):
        return front_points
    return [front_points[i] for i in sorted({round(i * (len(front_points) - 1) / (k - 1)) for i in range(k)})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landscape", type=Path, default=HERE / "landscape-h200.jsonl.gz")
    parser.add_argument("--studies", type=int, default=64)
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--samplers", nargs="+", default=list(samplers()), choices=list(samplers()))
    parser.add_argument("--time-noise", type=float, default=0.05, help="log-normal sd of a trial's measured time")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2, help="fresh seeds per confirmed configuration")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    land = Landscape(args.landscape)
    grid = [(b, l) for b in range(len(BATCH_SIZES)) for l in range(len(land.lrs))]
    truth = {p: (float(land.true[p]), true_time(p[0])) for p in grid}
    # Accuracy more than 1 pp below the notes' settings counts for nothing: the front that matters lies above it.
    reference = (truth[land.baseline][0] - 1.0, 1.1 * max(v[1] for v in truth.values()))
    ideal = hypervolume(list(truth.values()), reference)
    print(f"{args.studies} studies x {len(args.samplers)} samplers, {args.trials} trials, time noise "
          f"{args.time_noise:.0%}; the grid's true front: {len(non_dominated(list(truth.values())))} points; reference "
          f"point {reference[0]:.2f} pp, {reference[1]:.1f} s", flush=True)
    print("\n| sampler | CPU s/study | search front, share of ideal HV: median / 10th pct | confirmed front: median "
          "/ 10th pct | true front points found |")
    print("|---|---:|---:|---:|---:|")
    true_front = {grid[i] for i in non_dominated([truth[p] for p in grid])}
    for name in args.samplers:
        started, searched, confirmed, found = time.process_time(), [], [], []
        for i in range(args.studies):
            table = i % len(land.seeds)
            points, told = run_study(land, name, i, table, args.trials, args.time_noise)
            front = [points[j] for j in non_dominated(told)]
            searched.append(hypervolume([truth[p] for p in set(front)], reference) / ideal)
            found.append(len(set(front) & true_front))
            ordered = sorted(set(front), key=lambda p: -land.val[table][p])
            chosen = list(dict.fromkeys([*spread(ordered, args.top_k), land.baseline]))
            fresh = np.random.default_rng(i).permutation([s for s in range(len(land.seeds)) if s != table])
            used = [table, *fresh[:args.seeds]]
            means = [(float(np.mean([land.val[s][p] for s in used])), true_time(p[0])) for p in chosen]
            kept = [chosen[j] for j in non_dominated(means)]
            confirmed.append(hypervolume([truth[p] for p in kept], reference) / ideal)
        took = (time.process_time() - started) / args.studies
        print(f"| {name} | {took:.2f} | {np.median(searched):.3f} / {np.percentile(searched, 10):.3f} | "
              f"{np.median(confirmed):.3f} / {np.percentile(confirmed, 10):.3f} | {np.mean(found):.1f} of "
              f"{len(true_front)} |", flush=True)


if __name__ == "__main__":
    main()
