"""Does the default sweep beat the notes' fixed settings?  The default 20-trial study against one job with
batch 128 and Adam 1e-3, same data, same validation split, same number of epochs.

    python bench/sweep_quality.py [--dataset fashion_mnist] [--epochs 10] [--trials 20]
"""
import argparse
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient
from sweeps import run_job, run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    common = [f"dataset={args.dataset}", f"epochs={args.epochs}"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        client = MlflowClient(f"sqlite:///{work}/mlflow.db")
        notes = client.get_run(run_job(work, common)).data.metrics
        sweep = run_sweep("default-sweep", work, [*common, f"hydra.sweeper.n_trials={args.trials}"])
        best = client.get_run(sweep["best_run_id"]).data.metrics
        print(f"\n{args.dataset}, {args.epochs} epochs; validation = 10 000 images carved from the training split")
        print("| configuration | best val accuracy | test accuracy |")
        print("|---|---|---|")
        print(f"| notes: batch 128, Adam lr 1e-3 | {notes['best_val_accuracy']:.4f} | {notes['test_accuracy']:.4f} |")
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sweep["best_params"].items())
        print(f"| best of {args.trials}-trial sweep ({params}) | {best['best_val_accuracy']:.4f} | "
              f"{best['test_accuracy']:.4f} |")
        print(f"| difference | {100 * (best['best_val_accuracy'] - notes['best_val_accuracy']):+.2f} pp | "
              f"{100 * (best['test_accuracy'] - notes['test_accuracy']):+.2f} pp |")
        print(f"sweep wall time {sweep['wall_s']:.0f} s, {sweep['complete']} complete, {sweep['failed']} failed")


if __name__ == "__main__":
    main()
