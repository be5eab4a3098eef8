"""Which sampler, and which confirmation settings, pick the best configuration?  Simulated sweeps over the stored
landscape (bench/landscape.py): no training, CPU only.

    python bench/samplers.py                         # 256 studies x 7 samplers, ~25 min of CPU (GPSampler)
    python bench/samplers.py --studies 32 --samplers tpe-mv-cl random   # a quick look

Study i reads landscape seed i mod 16 (a real sweep fixes its seed) and seeds its sampler with i. Its trials run
one at a time through ask/tell, over the default search space (batch_size choice(16..512), lr log-uniform
1e-4..1e-1), the notes' batch 128 / Adam 1e-3 enqueued as trial 0; a trial's value is the seed's validation accuracy at
the nearest grid point (lr snapped on the log scale). Then either the best trial is the answer (search only), or the
top_k distinct configurations and the baseline are trained again on `seeds` fresh landscape seeds (the same ones for
each, not the study's) and the best mean of (search value + fresh values) is the answer. Each answer is scored by its
true gain: its mean over all 16 seeds minus the baseline's. Confirmation is compared with search alone at equal
compute: 20 trials + (top_k + 1) x seeds confirmation trainings against that many search trials.
"""
import argparse
import time
from pathlib import Path

import numpy as np
import optuna
import torch

from _landscape_oracle import Landscape, best_searched, confirmed, run_study, samplers

HERE = Path(__file__).parent


def stats(land, picks):
    """Median, 10th percentile and mean of the picked configurations' true gains, and their mean regret."""
    gains = np.array([land.gain[p] for p in picks])
    return np.median(gains), np.percentile(gains, 10), gains.mean(), land.best_gain - gains.mean()


def cell(median, p10, *_):
    return f"{median:+.2f} / {p10:+.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landscape", type=Path, default=HERE / "landscape-h200.jsonl.gz")
    parser.add_argument("--studies", type=int, default=256)
    parser.add_argument("--trials", type=int, nargs="+", default=[20, 25, 30],
                        help="search trials before confirmation; the first is the sweep's n_trials")
    parser.add_argument("--samplers", nargs="+", choices=list(samplers()),
                        default=[name for name in samplers() if not name.startswith("gp-tpe")],
                        help="gp-tpe-50 / gp-tpe-100: sweeplab's default GP then TPE (docs/benchmarks.md, "
                             "'A sampler that scales')")
    parser.add_argument("--pairs", nargs="+", default=["3,2", "3,3", "5,2", "2,2", "2,3", "2,4", "3,4", "5,3"],
                        help="confirmation settings top_k,seeds")
    parser.add_argument("--target", type=float, default=0.75, help="median goal, as a share of the best true gain")
    args = parser.parse_args()
    torch.set_num_threads(1)  # GPSampler's fits: one core
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    land = Landscape(args.landscape)
    pairs = [tuple(map(int, pair.split(","))) for pair in args.pairs]
    if max(seeds for _, seeds in pairs) > len(land.seeds) - 1:
        parser.error(f"at most {len(land.seeds) - 1} fresh seeds")
    longest = max(args.trials) + max((k + 1) * r for k, r in pairs)
    print(f"{args.studies} studies x {len(args.samplers)} samplers, {longest} trials each; "
          f"best grid configuration: +{land.best_gain:.2f} pp over the baseline", flush=True)
    everything = [np.unravel_index(table.argmax(), table.shape) for table in land.val]
    print("each seed's best of all grid points, picked on its own table: true gain median / 10th percentile "
          f"{cell(*stats(land, everything))} pp", flush=True)

    tables, fresh = [], []  # per study: its landscape seed (index), its fresh seeds in order of use
    for i in range(args.studies):
        table = i % len(land.seeds)
        tables.append(table)
        others = [s for s in range(len(land.seeds)) if s != table]
        fresh.append([int(s) for s in np.random.default_rng(i).permutation(others)])
    points, took = {}, {}
    for name in args.samplers:
        started = time.process_time()
        points[name] = []
        for i in range(args.studies):
            points[name].append(run_study(land, name, i, tables[i], longest))
            if (i + 1) % 64 == 0 or i + 1 == args.studies:
                print(f"  {name}: {i + 1} studies, {time.process_time() - started:.0f} s CPU", flush=True)
        took[name] = (time.process_time() - started) / args.studies

    def search_only(name, trials):
        return stats(land, [best_searched(land, pts[:trials], t) for pts, t in zip(points[name], tables)])

    def confirm(name, trials, top_k, seeds, with_search=True):
        picks, spent, held_out = [], [], []
        for pts, t, f in zip(points[name], tables, fresh):
            pick, cost = confirmed(land, pts[:trials], t, f[:seeds], top_k, with_search)
            picks.append(pick)
            spent.append(cost)
            unused = [s for s in range(len(land.seeds)) if s != t and s not in f[:seeds]]
            held_out.append(np.mean(land.val[unused][:, pick[0], pick[1]] - land.val[unused][:, *land.baseline]))
        return (*stats(land, picks), np.mean(spent), np.median(held_out))

    def visited(name, trials):
        """Share of studies whose search tried a configuration good enough for the goal."""
        return np.mean([any(land.gain[p] >= goal for p in pts[:trials]) for pts in points[name]])

    goal, n = args.target * land.best_gain, args.trials[0]
    print(f"\n### Samplers: true gain of the picked configuration over the baseline, pp, median / 10th percentile "
          f"({args.studies} studies)\n")
    print(f"| sampler | CPU s/study | tried one ≥ {goal:+.2f} in {n} | search {n} | " + " | ".join(
        f"{n} + confirm ({k},{r}) | search {n + (k + 1) * r}" for k, r in pairs[:3]) + " |")
    print("|---|---:|---:|---:|" + "---:|---:|" * 3)
    for name in args.samplers:
        cells = [cell(*search_only(name, n))]
        for k, r in pairs[:3]:
            cells += [cell(*confirm(name, n, k, r)), cell(*search_only(name, n + (k + 1) * r))]
        print(f"| {name} | {took[name]:.2f} | {visited(name, n):.0%} | " + " | ".join(cells) + " |")

    print("\n### Confirmation settings (top_k, seeds) after N search trials: median / 10th percentile of the true "
          "gain, pp\n")
    print("| sampler | N | tried one ≥ goal | " + " | ".join(f"({k},{r})" for k, r in pairs) + " |")
    print("|---|---:|---:|" + "---:|" * len(pairs))
    settings = []  # (total trainings, -median, -p10, -mean, sampler, N, top_k, seeds), the statistics to 0.01 pp
    for name in args.samplers:
        for trials in args.trials:
            row = []
            for k, r in pairs:
                median, p10, mean, *_ = confirm(name, trials, k, r)
                row.append(cell(median, p10) + (" ✓" if median >= goal and p10 > 0 else ""))
                settings.append((trials + (k + 1) * r, *(-round(v, 2) for v in (median, p10, mean)), name, trials, k, r))
            print(f"| {name} | {trials} | {visited(name, trials):.0%} | " + " | ".join(row) + " |")
    print(f"✓ = target met: median ≥ {goal:+.2f} pp ({args.target:.0%} of the best, +{land.best_gain:.2f}) "
          "and 10th percentile > 0")

    def describe(setting):
        total, median, p10, mean, name, trials, k, r = setting
        return (f"{name}, {trials} search trials, confirm.top_k={k}, confirm.seeds={r} ({total} trainings at most): "
                f"median {-median:+.2f}, 10th percentile {-p10:+.2f}, mean {-mean:+.2f} pp")

    best_at_n = min((s for s in settings if s[5] == n), key=lambda s: (*s[1:4], s[0]))
    met = sorted(s for s in settings if -s[1] >= goal and -s[2] > 0)
    print(f"\nbest after {n} search trials (highest median, then 10th percentile, mean; then cheapest): "
          + describe(best_at_n))
    print("cheapest that meets the target: " + (describe(met[0]) if met else "none"))
    fewest = sorted(met, key=lambda s: (s[5], *s[:4]))  # n_trials is the knob users see: move it least
    print("fewest search trials that meet the target (then cheapest, highest median, 10th percentile, mean): "
          + (describe(fewest[0]) if fewest else "none"))

    name = best_at_n[4]
    print(f"\n### {name}: every setting, its cost, and search alone at equal compute\n")
    print("| search + confirmation | trainings (mean) | median | 10th pct | mean gain | mean regret "
          "| held-out median | fresh seeds only: median / 10th pct | search alone: median / 10th pct |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for trials in args.trials:
        median, p10, mean, regret = search_only(name, trials)
        print(f"| {trials} trials | {trials} | {median:+.2f} | {p10:+.2f} | {mean:+.2f} | {regret:.2f} | | | |")
        for k, r in pairs:
            median, p10, mean, regret, cost, held_out = confirm(name, trials, k, r)
            alone = cell(*search_only(name, trials + (k + 1) * r))
            print(f"| {trials} + top {k} and baseline × {r} seeds | {trials + cost:.1f} | {median:+.2f} | {p10:+.2f} | "
                  f"{mean:+.2f} | {regret:.2f} | {held_out:+.2f} | {cell(*confirm(name, trials, k, r, False))} | "
                  f"{alone} |")

if __name__ == "__main__":
    main()
