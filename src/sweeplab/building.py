"""hydra.utils.instantiate restricted to the targets sweeplab's configs are meant to name."""
from hydra.utils import instantiate

TRUSTED_TARGETS = (
    "sweeplab.*",
    "torch.optim.*",
    "torchvision.datasets.*",
    "optuna.pruners.*",
    "optuna.samplers.*",
    "hydra_plugins.hydra_optuna_sweeper.*",
)


def build(config, **kwargs):
    return instantiate(config, _execution_whitelist_=TRUSTED_TARGETS, **kwargs)
