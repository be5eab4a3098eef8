"""Populations against one trial at a time: the default 20-trial sweep (with its confirmation) on real data, run
with hydra.sweeper.population=1, 4 and 8 in turn on this machine — wall time, epochs trained, the search's best and
the confirmed answer.

    python bench/populations.py [--dataset fashion_mnist] [--epochs 10] [--trials 20] [--populations 1 4 8]
    python bench/populations.py --populations 4 --reserves 0 4      # pruned sweeps without and with reserves

The sweeps run one after another in one process tree on the same machine; ratios are against population=1 of the
same run. First, the bench checks itself: one population of four (four learning rates) trained as a stack for two
epochs against the same four trained alone, on the same data — their per-epoch validation curves must agree.
"""
import argparse
import tempfile
from pathlib import Path

import functools
from collections import Counter

import torch
from omegaconf import OmegaConf
from torch import nn

from _sweeps import ROOT, confirmed_answer, run_sweep
from sweep_confirmation import pct, search_wall_s
from sweeplab.building import build
from sweeplab.data import make_splits
from sweeplab.data.source import DataPlaces
from sweeplab.model import FeedForwardNet
from sweeplab.paths import PACKAGE_CONF
from sweeplab.populations.fit import fit_population
from sweeplab.populations.member_optimizer import MemberOptimizer
from sweeplab.populations.stack import Stack
from sweeplab.training import fit


# A stack sums its products in another order than a lone model, and training magnifies those last bits like any
# other float noise (measured here: 0.00-0.15 pp after one epoch, up to 0.48 pp after two at lr 1e-2). A real
# difference in training shows as far more; one trial's own seed noise is ±0.3 pp (docs/benchmarks.md).
NOISE_PP = 0.6


DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_splits(dataset: str):
    conf = OmegaConf.load(PACKAGE_CONF / "dataset" / f"{dataset}.yaml")
    data = build(conf.source).load(DataPlaces(ROOT / "data"))
    splits = make_splits(data.train, data.test, conf.val_size, 42).to(DEVICE)
    return splits, int(torch.Size(data.input_shape).numel())


def model(in_features: int) -> FeedForwardNet:
    torch.manual_seed(42)
    return FeedForwardNet(in_features, 10).to(DEVICE)


def train_stacked(splits, in_features, lrs, epochs, batch_size):
    stack = Stack([model(in_features) for _ in lrs])
    optimizer = MemberOptimizer(stack, functools.partial(torch.optim.Adam, fused=True), [{"lr": lr} for lr in lrs])
    stacked, _ = fit_population(stack, optimizer, splits, epochs=epochs, batch_size=batch_size, seeds=[42] * len(lrs),
                                on_epoch=lambda k, m: None, loss_fn=nn.NLLLoss(), progress=False)
    return stacked


def train_alone(splits, in_features, lr, epochs, batch_size):
    alone = model(in_features)
    return fit(alone, torch.optim.Adam(alone.parameters(), lr=lr, fused=True), splits, epochs=epochs,
               batch_size=batch_size, seed=42, progress=False, loss_fn=nn.NLLLoss())


def check_against_solo(splits, in_features, lrs=(3e-4, 1e-3, 3e-3, 1e-2), epochs=2, batch_size=64) -> float:
    """The largest difference, in percentage points, between a member's and its lone training's val accuracy."""
    stacked = train_stacked(splits, in_features, lrs, epochs, batch_size)
    worst = 0.0
    for k, lr in enumerate(lrs):
        for a, b in zip(stacked[k].epochs, train_alone(splits, in_features, lr, epochs, batch_size).epochs):
            worst = max(worst, 100 * abs(a.val_accuracy - b.val_accuracy))
    return worst


def epoch_cost(splits, in_features, populations, batch_sizes=(16, 128, 512)) -> None:
    """One epoch per trial at each batch size: alone, and in a stack of K (its epoch time / K)."""
    print("| batch size | alone: s per trial-epoch | " + " | ".join(f"stack of {k}: s per trial-epoch (speed-up)"
                                                         for k in populations if k > 1) + " |")
    print("|---|---|" + "---|" * sum(k > 1 for k in populations))
    for batch_size in batch_sizes:
        alone = train_alone(splits, in_features, 1e-3, 1, batch_size).epochs[0].epoch_time_s
        cells = []
        for k in (k for k in populations if k > 1):
            per_trial = train_stacked(splits, in_features, [1e-3] * k, 1, batch_size)[0].epochs[0].epoch_time_s / k
            cells.append(f"{per_trial:.2f} s ({alone / per_trial:.2f}×)")
        print(f"| {batch_size} | {alone:.2f} s | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--populations", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-sweeps", action="store_true", help="only the self-check and the trial-epoch table")
    parser.add_argument("--reserves", type=int, nargs="+",
                        help="instead: hyperband-pruned sweeps in populations of the largest --populations, one for "
                             "each number of reserve trials per job given (e.g. --reserves 0 8)")
    args = parser.parse_args()
    if args.reserves:
        return reserve_sweeps(args)
    splits, in_features = load_splits(args.dataset)
    print(f"Device: {device_name()} (torch {torch.__version__})")
    worst = check_against_solo(splits, in_features)
    print(f"Self-check: stacked members against their lone trainings, largest val accuracy difference {worst:.2f} pp "
          f"(limit {NOISE_PP} pp)")
    if worst > NOISE_PP:
        raise SystemExit("the stacked members do not train as they would alone: the table would not mean anything")
    print("\nWhat one trial-epoch costs (epoch time includes the validation pass):\n")
    epoch_cost(splits, in_features, args.populations)
    del splits
    if args.no_sweeps:
        return
    print("\nThe sweeps:\n")
    print("| population | search | speed-up | search + confirmation | speed-up | epochs | search trials per batch size "
          "| search best val | confirmed best (params) | its val | its test | baseline val |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        for population in args.populations:
            name = f"population-{population}"
            sweep = run_sweep(name, Path(tmp), sweep_overrides(args, population), confirm=True)
            search = search_wall_s(sweep["trials"], args.trials)
            first = first or (search, sweep["wall_s"])
            c, params = confirmed_answer(Path(tmp) / name)
            best, base = c["best"], c["baseline"]
            print(f"| {population} | {search:.0f} s | {first[0] / search:.2f}× | {sweep['wall_s']:.0f} s | "
                  f"{first[1] / sweep['wall_s']:.2f}× | {sweep['epochs']} | {batch_counts(sweep['trials'], args.trials)} | "
                  f"{100 * sweep['best']:.2f} % | {params} | "
                  f"{pct(best['mean'], best['se'])} | {pct(best['test_accuracy_mean'], best['test_accuracy_se'])} | "
                  f"{pct(base['mean'], base['se'])} |", flush=True)


def reserve_sweeps(args) -> None:
    population = max(args.populations)
    print(f"Populations of {population}, hyperband pruner, {args.trials} trials of {args.epochs} epochs, on "
          f"{device_name()}:\n")
    print("| reserve trials per job | search | speed-up | population jobs | epochs | pruned | search best val |")
    print("|---|---|---|---|---|---|---|")
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        for reserve in args.reserves:
            name = f"reserve-{reserve}"
            sweep = run_sweep(name, Path(tmp), [*sweep_overrides(args, population),
                                                f"hydra.sweeper.population_reserve={reserve}",
                                                "hydra/sweeper/pruner=hyperband"])
            search = search_wall_s(sweep["trials"], args.trials)
            first = first or search
            jobs = len(list((Path(tmp) / name).glob("population-*")))
            print(f"| {reserve} | {search:.0f} s | {first / search:.2f}× | {jobs} | {sweep['epochs']} | "
                  f"{sweep['pruned']} | {100 * sweep['best']:.2f} % |", flush=True)


def sweep_overrides(args, population: int) -> list[str]:
    return [f"dataset={args.dataset}", f"epochs={args.epochs}", f"seed={args.seed}",
            f"hydra.sweeper.n_trials={args.trials}", f"hydra.sweeper.population={population}"]


def device_name() -> str:
    return torch.cuda.get_device_name() if DEVICE.type == "cuda" else "CPU"


def batch_counts(trials, n_search: int) -> str:
    counts = Counter(t.params.get("batch_size") for t in trials if t.number < n_search)
    return ", ".join(f"{b}: {n}" for b, n in sorted(counts.items()))


if __name__ == "__main__":
    main()
