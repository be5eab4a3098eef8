"""What one ask costs as a study grows: GPSampler, multivariate TPE with the constant liar, and sweeplab's default
(GP for the first gp_trials trials, then that TPE), over the default search space, values from the stored landscape.

    python bench/sampler_ask.py                              # 1 000 trials; GP alone up to 150 (its cost grows fast)
    python bench/sampler_ask.py --trials 300 --gp-trials 50 100

One process, one thread (torch.set_num_threads(1)), as bench/samplers.py. Prints the mean ask time (study.ask with
the search space, which is where the sampler works) per window of trials, in milliseconds.
"""
import argparse
import time
import warnings
from pathlib import Path

import optuna
import torch

from _landscape_oracle import NOTES, SPACE, Landscape
from sweeplab.sweep.scaling_sampler import GPThenTPESampler

HERE = Path(__file__).parent


def ask_times(land: Landscape, sampler, trials: int) -> list[float]:
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({"batch_size": NOTES[0], "optimizer.lr": NOTES[1]})
    took = []
    for _ in range(trials):
        started = time.perf_counter()
        trial = study.ask(SPACE)
        took.append(time.perf_counter() - started)
        study.tell(trial, float(land.val[0][land.snap(trial.params["batch_size"], trial.params["optimizer.lr"])]))
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landscape", type=Path, default=HERE / "landscape-h200.jsonl.gz")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--gp-max", type=int, default=150, help="trials of GPSampler alone")
    parser.add_argument("--gp-trials", type=int, nargs="+", default=[50], help="the default's switch points")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    land = Landscape(args.landscape)
    runs = {f"gp (to {args.gp_max})": ask_times(land, optuna.samplers.GPSampler(seed=args.seed), args.gp_max),
            "tpe-mv-cl": ask_times(land, optuna.samplers.TPESampler(multivariate=True, constant_liar=True,
                                                                   seed=args.seed), args.trials)}
    for gp_trials in args.gp_trials:
        runs[f"gp-then-tpe ({gp_trials})"] = ask_times(
            land, GPThenTPESampler(gp_trials=gp_trials, seed=args.seed), args.trials)
    edges = [e for e in (1, 11, 51, 101, 151, 201, 301, 501, 901) if e <= args.trials] + [args.trials + 1]
    windows = list(zip(edges, edges[1:]))
    print(f"\nmean ask time, ms (one thread), by trial number; total s\n")
    print("| sampler | " + " | ".join(f"{a}–{b - 1}" for a, b in windows) + " | total s |")
    print("|---|" + "---:|" * (len(windows) + 1))
    for name, took in runs.items():
        cells = [f"{1000 * sum(took[a - 1:b - 1]) / len(took[a - 1:b - 1]):.1f}" if len(took) >= b - 1 else ""
                 for a, b in windows]
        print(f"| {name} | " + " | ".join(cells) + f" | {sum(took):.1f} |")


if __name__ == "__main__":
    main()
