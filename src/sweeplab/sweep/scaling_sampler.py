"""The default sampler: Optuna's GPSampler while the study is small, multivariate TPE with the constant liar after.

GPSampler proposes the best configurations on sweeplab's space at the trial counts of a usual sweep (docs/
benchmarks.md, "Choosing the sampler"), but each ask refits a Gaussian process on every trial so far: its cost grows
with the study (about 0.4 s per ask at 200–300 trials on two cores), and a 1 000-trial study would spend most of its
time in the sampler. TPE's ask stays in milliseconds, and with hundreds of trials behind it, it no longer needs the
GP's sample efficiency. Trials numbered below ``gp_trials`` ask the GP, the others TPE, so the choice is fixed per
trial (every worker and every resume agrees on it), and TPE builds on all the trials the GP proposed.
"""
import warnings
from collections.abc import Callable, Sequence

import optuna
from optuna.samplers import BaseSampler, GPSampler, TPESampler
from optuna.trial import FrozenTrial

GP_TRIALS = 50  # chosen by measurement: docs/benchmarks.md, "A sampler that scales"


class GPThenTPESampler(BaseSampler):
    def __init__(self, *, gp_trials: int = GP_TRIALS, seed: int | None = None, n_startup_trials: int = 10,
                 constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None):
        if gp_trials < 0:
            raise ValueError(f"gp_trials must be 0 or more, not {gp_trials}")
        self.gp_trials = gp_trials
        self.gp = GPSampler(seed=seed, n_startup_trials=n_startup_trials, constraints_func=constraints_func)
        with warnings.catch_warnings():  # multivariate and constant_liar are "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.tpe = TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=True,
                                  constant_liar=True, constraints_func=constraints_func)

    def sampler_for(self, trial: FrozenTrial) -> BaseSampler:
        """The sampler that proposes this trial's values: the GP for the first gp_trials trials, TPE after."""
        return self.gp if trial.number < self.gp_trials else self.tpe

    def infer_relative_search_space(self, study, trial):
        return self.sampler_for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.sampler_for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.sampler_for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self.sampler_for(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.sampler_for(trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.gp.reseed_rng()
        self.tpe.reseed_rng()
