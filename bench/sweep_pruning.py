"""Pruning pays: the same seeded sweep with and without a pruner, and sequential vs 2 parallel trials.

    python bench/sweep_pruning.py [--trials 20] [--epochs 8] [--pruner hyperband] [--seeds 42 7 1]

For each seed (which seeds the sampler, the validation split, weight init and shuffling), runs the sweep without
and with the pruner and prints total epochs trained, wall time and best validation accuracy, then the means.
"""
import argparse
import statistics
import tempfile
from pathlib import Path

from _sweeps import run_sweep


def print_pruning_table(args, rows) -> None:
    print(f"\n{args.trials} trials × up to {args.epochs} epochs on {args.dataset}, seeded TPE, "
          f"{args.pruner} pruner vs none")
    print("| seed | epochs: none / pruner | ratio | wall s: none / pruner | ratio | best val: none / pruner "
          "| difference | pruner: complete / pruned |")
    print("|---|---|---|---|---|---|---|---|")
    for seed, plain, pruned in rows:
        print(f"| {seed} | {plain['epochs']} / {pruned['epochs']} | {plain['epochs'] / pruned['epochs']:.2f}× | "
              f"{plain['wall_s']:.0f} / {pruned['wall_s']:.0f} | {plain['wall_s'] / pruned['wall_s']:.2f}× | "
              f"{plain['best']:.4f} / {pruned['best']:.4f} | {100 * (pruned['best'] - plain['best']):+.2f} pp | "
              f"{pruned['complete']} / {pruned['pruned']} |")
    mean = lambda key, which: statistics.mean(r[which][key] for r in rows)  # noqa: E731
    print(f"| mean | {mean('epochs', 1):.0f} / {mean('epochs', 2):.0f} | "
          f"{mean('epochs', 1) / mean('epochs', 2):.2f}× | {mean('wall_s', 1):.0f} / {mean('wall_s', 2):.0f} | "
          f"{mean('wall_s', 1) / mean('wall_s', 2):.2f}× | {mean('best', 1):.4f} / {mean('best', 2):.4f} | "
          f"{100 * (mean('best', 2) - mean('best', 1)):+.2f} pp | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--pruner", default="hyperband")
    parser.add_argument("--seeds", type=int, nargs="*", default=[42, 7, 1], help="none: only the parallel pair")
    parser.add_argument("--parallel-trials", type=int, default=10, help="trials in the sequential/parallel pair")
    parser.add_argument("--skip-parallel", action="store_true")
    args = parser.parse_args()
    common = [f"dataset={args.dataset}", f"epochs={args.epochs}", f"hydra.sweeper.n_trials={args.trials}"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for seed in args.seeds:
            plain = run_sweep(f"no-pruner-{seed}", work, [*common, f"seed={seed}", "hydra/sweeper/pruner=none"])
            pruned = run_sweep(f"pruner-{seed}", work, [*common, f"seed={seed}", f"hydra/sweeper/pruner={args.pruner}"])
            rows.append((seed, plain, pruned))
            print(f"seed {seed}: no pruner {plain['epochs']} epochs, best {plain['best']:.4f}; "
                  f"{args.pruner} {pruned['epochs']} epochs, best {pruned['best']:.4f}", flush=True)
        if rows:
            print_pruning_table(args, rows)
        if args.skip_parallel:
            return

        few = [f"dataset={args.dataset}", "epochs=3", f"hydra.sweeper.n_trials={args.parallel_trials}"]
        sequential = run_sweep("sequential", work, few)
        parallel = run_sweep("parallel", work, [*few, "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2"])
        print(f"\n{args.parallel_trials} trials × 3 epochs: basic launcher (one trial at a time, all threads) vs joblib "
              f"with n_jobs=2 (2 slots, each trial 1 torch thread)")
        print("| launcher | wall time (s) | best val accuracy |")
        print("|---|---|---|")
        print(f"| basic (sequential) | {sequential['wall_s']:.0f} | {sequential['best']:.4f} |")
        print(f"| joblib, n_jobs=2 | {parallel['wall_s']:.0f} | {parallel['best']:.4f} |")
        print(f"| ratio (sequential / parallel) | {sequential['wall_s'] / parallel['wall_s']:.2f}× | |")


if __name__ == "__main__":
    main()
