"""The stored landscape as an oracle for simulated sweeps: no training, only table look-ups.

A simulated study fixes one landscape seed (as a real sweep fixes its seed): a trial's value is that seed's best
validation accuracy at the grid point nearest the proposed configuration. The true value of a grid point is its mean
over all the landscape's seeds. Confirmation runs of a configuration read seeds the study does not use.
"""
import gzip
import json
import math
import warnings

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from landscape import NOTES, collect
from sweeplab.sweep.scaling_sampler import GPThenTPESampler

BATCH_SIZES = (16, 32, 64, 128, 256, 512)
# The real sweep's default hydra.sweeper.params: choice(16, ..., 512) and tag(log, interval(1e-4, 1e-1)).
SPACE = {"batch_size": CategoricalDistribution(BATCH_SIZES),
         "optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True)}
# CMA-ES cannot model a categorical (it samples it independently, at random): the same batch sizes as 2**k.
SPACE_LOG2 = {"batch_size": IntDistribution(4, 9), "optimizer.lr": SPACE["optimizer.lr"]}


def samplers():
    """name -> (make(seed) -> sampler, search space). Settings as the sweeper's sampler configs, unless noted."""
    s = optuna.samplers
    return {
        "tpe-mv-cl": (lambda seed: s.TPESampler(multivariate=True, constant_liar=True, seed=seed), SPACE),
        "tpe": (lambda seed: s.TPESampler(multivariate=False, constant_liar=False, seed=seed), SPACE),
        "random": (lambda seed: s.RandomSampler(seed=seed), SPACE),
        # scramble=True: unscrambled Sobol points (the plugin's default) are the same in every study, whatever the seed
        "qmc": (lambda seed: s.QMCSampler(scramble=True, seed=seed), SPACE),
        "gp": (lambda seed: s.GPSampler(seed=seed), SPACE),
        "cmaes": (lambda seed: s.CmaEsSampler(seed=seed, warn_independent_sampling=False), SPACE),
        "cmaes-log2": (lambda seed: s.CmaEsSampler(seed=seed), SPACE_LOG2),
        # sweeplab's default: GP for the first 50 / 100 trials, then tpe-mv-cl
        "gp-tpe-50": (lambda seed: GPThenTPESampler(gp_trials=50, seed=seed), SPACE),
        "gp-tpe-100": (lambda seed: GPThenTPESampler(gp_trials=100, seed=seed), SPACE),
    }


class Landscape:
    """val[s, b, l]: seed s's best validation accuracy in pp at batch BATCH_SIZES[b], learning rate lrs[l]."""

    def __init__(self, path):
        with gzip.open(path, "rt") if str(path).endswith(".gz") else open(path) as lines:
            rows = [json.loads(line) for line in lines]
        results = collect(rows)
        self.seeds = list(dict.fromkeys(row["seed"] for row in rows))
        self.lrs = sorted({lr for _, lr in results})
        self.val = np.full((len(self.seeds), len(BATCH_SIZES), len(self.lrs)), np.nan)
        for (batch_size, lr), per_seed in results.items():
            for seed, (val, _) in per_seed.items():
                self.val[self.seeds.index(seed), BATCH_SIZES.index(batch_size), self.lrs.index(lr)] = 100 * val
        if np.isnan(self.val).any():
            raise ValueError(f"{path}: a grid point diverged on some seed; the oracle needs every value")
        self.true = self.val.mean(0)
        self.baseline = self.snap(*NOTES)
        self.gain = self.true - self.true[self.baseline]  # true gain over the notes' settings, pp
        self.best_gain = float(self.gain.max())
        self.log_lrs = np.log(self.lrs)

    def snap(self, batch_size, lr):
        """Grid point nearest (batch_size, lr), the learning rate on the log scale."""
        return BATCH_SIZES.index(batch_size), int(np.abs(np.log(self.lrs) - math.log(lr)).argmin())


def run_study(land, sampler_name, study_seed, table, n_trials):
    """One sequential study (n_jobs=1) through ask/tell, the baseline enqueued as trial 0.
    Returns the grid point of each trial, in trial order; a trial's value is land.val[table][point]."""
    make, space = samplers()[sampler_name]
    log2 = space is SPACE_LOG2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-feature warnings of multivariate TPE, GP
        study = optuna.create_study(direction="maximize", sampler=make(study_seed))
        study.enqueue_trial({"batch_size": int(math.log2(NOTES[0])) if log2 else NOTES[0], "optimizer.lr": NOTES[1]})
        points = []
        for _ in range(n_trials):
            trial = study.ask(space)
            batch_size = trial.params["batch_size"]
            point = land.snap(2 ** batch_size if log2 else batch_size, trial.params["optimizer.lr"])
            points.append(point)
            study.tell(trial, float(land.val[table][point]))
    return points


def best_searched(land, points, table):
    """The search's answer: the first trial with the best value (Optuna's best_trial)."""
    values = [land.val[table][p] for p in points]
    return points[int(np.argmax(values))]


def confirmed(land, points, table, fresh, top_k, with_search=True):
    """The answer after confirmation: the top_k distinct configurations of the search and the baseline, each
    scored by the mean of its search value and its values on the fresh seeds (tables not used by the study), or by
    the fresh values alone. Returns (answer, trainings spent on confirmation)."""
    values = [land.val[table][p] for p in points]
    order = sorted(range(len(points)), key=lambda i: -values[i])  # stable: ties keep trial order
    chosen = list(dict.fromkeys(points[i] for i in order))[:top_k]
    if land.baseline not in chosen:
        chosen.append(land.baseline)
    used = [table, *fresh] if with_search else fresh
    score = [np.mean([land.val[s][p] for s in used]) for p in chosen]
    return chosen[int(np.argmax(score))], len(chosen) * len(fresh)
