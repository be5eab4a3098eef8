"""Does the default sweep beat the notes' fixed settings?  The default 20-trial study against one job with
batch 128 and Adam 1e-3, same data, same validation split, same number of epochs, for each seed.

    python bench/sweep_quality.py [--dataset fashion_mnist] [--epochs 10] [--trials 20] [--seeds 42 7 1]

The seed fixes the validation split, weight init, shuffling and the sampler, for the notes' job and the sweep alike.
"""
import argparse
import statistics
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient
from _sweeps import run_job, run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 1])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        client = MlflowClient(f"sqlite:///{work}/mlflow.db")
        for seed in args.seeds:
            common = [f"dataset={args.dataset}", f"epochs={args.epochs}", f"seed={seed}"]
            notes = client.get_run(run_job(work, common)).data.metrics
            sweep = run_sweep(f"default-sweep-{seed}", work, [*common, f"hydra.sweeper.n_trials={args.trials}"])
            best = client.get_run(sweep["best_run_id"]).data.metrics
            rows.append((seed, notes, best, sweep))
            print(f"seed {seed}: notes {notes['best_val_accuracy']:.4f}, sweep {best['best_val_accuracy']:.4f} "
                  f"({sweep['best_params']}, {sweep['wall_s']:.0f} s)", flush=True)
    print(f"\n{args.dataset}, {args.epochs} epochs; validation = 10 000 images carved from the training split by the seed")
    print("| seed | notes: batch 128, Adam 1e-3 — val / test | best of the default sweep | its val / test "
          "| difference val / test |")
    print("|---|---|---|---|---|")
    for seed, notes, best, sweep in rows:
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sweep["best_params"].items())
        print(f"| {seed} | {notes['best_val_accuracy']:.4f} / {notes['test_accuracy']:.4f} | {params} | "
              f"{best['best_val_accuracy']:.4f} / {best['test_accuracy']:.4f} | "
              f"{100 * (best['best_val_accuracy'] - notes['best_val_accuracy']):+.2f} pp / "
              f"{100 * (best['test_accuracy'] - notes['test_accuracy']):+.2f} pp |")
    mean = lambda i, key: statistics.mean(r[i][key] for r in rows)  # noqa: E731
    print(f"| mean | {mean(1, 'best_val_accuracy'):.4f} / {mean(1, 'test_accuracy'):.4f} | | "
          f"{mean(2, 'best_val_accuracy'):.4f} / {mean(2, 'test_accuracy'):.4f} | "
          f"{100 * (mean(2, 'best_val_accuracy') - mean(1, 'best_val_accuracy')):+.2f} pp / "
          f"{100 * (mean(2, 'test_accuracy') - mean(1, 'test_accuracy')):+.2f} pp |")
    print("sweep wall times: " + ", ".join(f"{r[3]['wall_s']:.0f} s" for r in rows)
          + "; trials complete: " + ", ".join(str(r[3]['complete']) for r in rows))


if __name__ == "__main__":
    main()
