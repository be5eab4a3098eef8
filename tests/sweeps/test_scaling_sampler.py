"""The default sampler (GPThenTPESampler): the first gp_trials trials are GPSampler's proposals, the rest are
multivariate TPE's (constant liar) built on every trial before them. Checked on what each sampler proposes alone."""
import math
import warnings

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from sweeplab.sweep.scaling_sampler import GPThenTPESampler

SPACE = {"batch_size": CategoricalDistribution((16, 32, 64, 128, 256, 512)),
         "optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True)}
SWITCH, SEED = 12, 7


def value(params: dict) -> float:
    """A smooth toy landscape: best near batch 32, lr 3e-3."""
    return -abs(math.log2(params["batch_size"] / 32)) - (math.log10(params["optimizer.lr"]) + 2.5) ** 2


def run(sampler, trials: int, study: optuna.Study | None = None) -> list[dict]:
    study = study or optuna.create_study(direction="maximize", sampler=sampler)
    for _ in range(trials):
        trial = study.ask(SPACE)
        study.tell(trial, value(trial.params))
    return [t.params for t in study.trials]


@pytest.fixture(scope="module", autouse=True)
def quiet():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def test_the_sampler_switches_from_gp_to_tpe_at_its_threshold():
    switching = run(GPThenTPESampler(gp_trials=SWITCH, seed=SEED), SWITCH + 3)
    gp_alone = run(optuna.samplers.GPSampler(seed=SEED), SWITCH + 1)
    assert switching[:SWITCH] == gp_alone[:SWITCH]  # below the threshold: the GP's proposals, exactly
    assert switching[SWITCH] != gp_alone[SWITCH]  # (the GP's own model, past its 10 random startup trials)

    # From the threshold on: TPE's proposals, seeded alike, given the same trials before it.
    history = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(
        multivariate=True, constant_liar=True, seed=SEED))
    for params in switching[:SWITCH]:
        history.add_trial(optuna.trial.create_trial(params=params, distributions=SPACE, value=value(params)))
    assert run(None, 3, history)[SWITCH:] == switching[SWITCH:]


def test_zero_gp_trials_is_tpe_throughout():
    tpe = optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=SEED)
    assert run(GPThenTPESampler(gp_trials=0, seed=SEED), 12) == run(tpe, 12)
    with pytest.raises(ValueError, match="gp_trials"):
        GPThenTPESampler(gp_trials=-1)
