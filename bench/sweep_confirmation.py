"""The default sweep with its confirmation, on real data: the confirmed best against the baseline, both on fresh
seeds, and the wall time of the search alone against the search plus confirmation.

    python bench/sweep_confirmation.py [--dataset fashion_mnist] [--epochs 10] [--trials 25] [--seeds 42 7 1]

Each sweep seed fixes the validation split, the sampler and the search trials' weights; confirmation trains the top
configurations and the baseline again on fresh seeds (sweeplab's defaults: top 3, 2 seeds each).
"""
import argparse
import tempfile
from pathlib import Path

from _sweeps import confirmed_answer, run_sweep


def search_wall_s(study_trials, n_search: int) -> float:
    """From the first trial's start to the last search trial's end (the confirmation comes after)."""
    search = [t for t in study_trials if t.number < n_search and t.datetime_complete]
    return (max(t.datetime_complete for t in search) - min(t.datetime_start for t in search)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=25)  # the sweeper's default n_trials
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 1])
    args = parser.parse_args()
    print("| sweep seed | confirmed best | its val (3 seeds) | its test | baseline val | baseline test "
          "| gain val | verdict | search | search + confirmation |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            name = f"confirmed-{seed}"
            sweep = run_sweep(name, Path(tmp), [f"dataset={args.dataset}", f"epochs={args.epochs}", f"seed={seed}",
                                                f"hydra.sweeper.n_trials={args.trials}"], confirm=True)
            c, params = confirmed_answer(Path(tmp) / name)
            best, base = c["best"], c["baseline"]
            print(f"| {seed} | {params} | {pct(best['mean'], best['se'])} | "
                  f"{pct(best['test_accuracy_mean'], best['test_accuracy_se'])} | {pct(base['mean'], base['se'])} | "
                  f"{pct(base['test_accuracy_mean'], base['test_accuracy_se'])} | {pp(c['gain'], c['gain_se'])} | "
                  f"{'beyond noise' if 'exceeds' in c['verdict'] else 'within noise'} | "
                  f"{search_wall_s(sweep['trials'], args.trials):.0f} s | {sweep['wall_s']:.0f} s |", flush=True)


def pct(mean, se) -> str:
    return f"{100 * mean:.2f} ± {100 * se:.2f} %" if se is not None else f"{100 * mean:.2f} %"


def pp(gain, se) -> str:
    return f"{100 * gain:+.2f} ± {100 * se:.2f} pp" if se is not None else f"{100 * gain:+.2f} pp"


if __name__ == "__main__":
    main()
