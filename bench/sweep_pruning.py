"""Pruning pays: the same seeded sweep with and without a pruner, and sequential vs 2 parallel trials.

    python bench/sweep_pruning.py [--trials 20] [--epochs 8] [--pruner hyperband]

Prints total epochs trained, wall time and best validation accuracy of each sweep, and their ratios.
"""
import argparse
import tempfile
from pathlib import Path

from sweeps import run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--pruner", default="hyperband")
    parser.add_argument("--parallel-trials", type=int, default=10, help="trials in the sequential/parallel pair")
    args = parser.parse_args()
    common = [f"dataset={args.dataset}", f"epochs={args.epochs}", f"hydra.sweeper.n_trials={args.trials}"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plain = run_sweep("no-pruner", work, [*common, "hydra/sweeper/pruner=none"])
        pruned = run_sweep("pruner", work, [*common, f"hydra/sweeper/pruner={args.pruner}"])
        print(f"\n{args.trials} trials × up to {args.epochs} epochs on {args.dataset}, seeded TPE")
        print("| sweep | epochs trained | wall time (s) | best val accuracy | complete / pruned |")
        print("|---|---|---|---|---|")
        for r in (plain, pruned):
            label = "no pruner" if r is plain else f"{args.pruner} pruner"
            print(f"| {label} | {r['epochs']} | {r['wall_s']:.0f} | {r['best']:.4f} | {r['complete']} / {r['pruned']} |")
        print(f"| ratio (no pruner / pruner) | {plain['epochs'] / pruned['epochs']:.2f}× | "
              f"{plain['wall_s'] / pruned['wall_s']:.2f}× | {100 * (pruned['best'] - plain['best']):+.2f} pp | |")

        few = [f"dataset={args.dataset}", "epochs=3", f"hydra.sweeper.n_trials={args.parallel_trials}"]
        sequential = run_sweep("sequential", work, [*few, "hydra.sweeper.n_jobs=2"])
        parallel = run_sweep("parallel", work, [*few, "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2"])
        print(f"\n{args.parallel_trials} trials × 3 epochs, batches of 2: basic launcher vs joblib (2 processes, "
              f"1 torch thread each)")
        print("| launcher | wall time (s) | best val accuracy |")
        print("|---|---|---|")
        print(f"| basic (sequential) | {sequential['wall_s']:.0f} | {sequential['best']:.4f} |")
        print(f"| joblib, n_jobs=2 | {parallel['wall_s']:.0f} | {parallel['best']:.4f} |")
        print(f"| ratio (sequential / parallel) | {sequential['wall_s'] / parallel['wall_s']:.2f}× | |")


if __name__ == "__main__":
    main()
