"""A thousand trials: the 1 000-trial, 10-epoch Fashion-MNIST study of the notes' network (batch size × learning
rate, with confirmation) in populations, against the default sweep one trial at a time — one table.

    python bench/thousand_trials.py            # on a GPU: 1 000 trials, population=auto, 4 populations side by side
    python bench/thousand_trials.py --small    # CPU-sized: digits, 1 epoch, 48 trials (the slow test runs fewer)

Both studies use sweeplab's defaults otherwise (sampler, confirmation of the top 3 and the baseline on 2 fresh
seeds); the one-at-a-time study is the default 25-trial sweep. "answer" is the confirmed best configuration and its
validation accuracy, mean ± standard error over its seeds; "gain" is its confirmed gain over the baseline. Sized
to fit in 8 minutes of an H200 (both studies, data already on disk); where no GPU exists the full size takes hours:
use --small.
"""
import argparse
import tempfile
from collections import Counter
from pathlib import Path

import torch

from _sweeps import confirmed_answer, run_sweep
from sweep_confirmation import pct, pp

FULL = {"dataset": "fashion_mnist", "epochs": 10, "trials": 1000, "population": "auto", "slots": 4, "alone": 25}
SMALL = {"dataset": "digits", "epochs": 1, "trials": 48, "population": 8, "slots": 1, "alone": 12}


def study(name: str, workdir: Path, size: dict, trials: int, population, slots: int, threads: int) -> dict:
    overrides = [f"dataset={size['dataset']}", f"epochs={size['epochs']}", f"hydra.sweeper.n_trials={trials}",
                 f"hydra.sweeper.population={population}", f"threads={threads}"]
    if slots > 1:  # several populations side by side on one device, each in its own process
        overrides += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={slots}", f"hydra.sweeper.n_jobs={slots}"]
    result = run_sweep(name, workdir, overrides, confirm=True)
    result["confirmed"], result["params"] = confirmed_answer(workdir / name)
    search = [t for t in result["trials"] if t.number < trials]
    result["batch_sizes"] = Counter(t.params["batch_size"] for t in search)
    return result


def row(label: str, result: dict) -> str:
    confirmed, trials = result["confirmed"], len(result["trials"]) + len(result["confirm_trials"])
    best = confirmed["best"]
    gain = confirmed.get("gain")
    return (f"| {label} | {trials} | {result['wall_s']:.1f} | {60 * trials / result['wall_s']:.0f} | "
            f"{len(result['batch_sizes'])} | {result['params']} | {pct(best['mean'], best.get('se'))} | "
            f"{pp(gain, confirmed.get('gain_se')) if gain is not None else '—'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the CPU-sized study (CI)")
    parser.add_argument("--trials", type=int, help="search trials of the large study")
    parser.add_argument("--alone", type=int, help="search trials of the study one at a time")
    parser.add_argument("--population", help="hydra.sweeper.population of the large study (auto, or a number)")
    parser.add_argument("--workdir", type=Path, help="keep the studies here (default: a temporary folder)")
    args = parser.parse_args()
    size = dict(SMALL if args.small else FULL)
    size["trials"] = args.trials or size["trials"]
    size["alone"] = args.alone or size["alone"]
    size["population"] = args.population or size["population"]
    cuda = torch.cuda.is_available()
    slots = size["slots"] if cuda else 1  # on a CPU, populations run one after another
    device = torch.cuda.get_device_name() if cuda else "cpu"
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        # One thread per process where several share the cores; else what the job picks.
        threads = 1 if args.small or slots > 1 else 0
        many = study("thousand", workdir, size, size["trials"], size["population"], slots, threads)
        alone = study("one-at-a-time", workdir, size, size["alone"], 1, 1, threads)
    print(f"\n### {size['trials']} trials, {size['dataset']}, {size['epochs']} epochs, on {device}\n")
    print("| study | trials (with confirmation) | wall s | trials/min | batch sizes tried | confirmed answer "
          "| its val accuracy | gain over the baseline |")
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    print(row(f"{size['trials']} in populations ({size['population']}, {slots} at once)", many))
    print(row(f"{size['alone']} one at a time", alone))
    difference = many["confirmed"]["best"]["mean"] - alone["confirmed"]["best"]["mean"]
    print(f"\nconfirmed answers differ by {100 * difference:+.2f} pp (large study minus one at a time); "
          f"batch sizes of the large study's search trials: {dict(sorted(many['batch_sizes'].items()))}")


if __name__ == "__main__":
    main()
