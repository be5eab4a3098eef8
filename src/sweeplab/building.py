"""Objects from configs, through Hydra's instantiate: the user's own configs may name any importable target;
a config written elsewhere (a run folder or MLflow artifact someone sent) only the targets below, unless trusted."""
import inspect
import logging

from hydra.errors import InstantiationException
from hydra.utils import UNSAFE_DISABLE_EXECUTION_CHECKS, get_object, instantiate
from omegaconf import DictConfig, ListConfig

from sweeplab.errors import ConfigError, SweeplabError, first_line

# What sweeplab's own configs name: enough to rebuild a run of the built-in datasets, models and optimizers.
SAFE_TARGETS = (
    "sweeplab.model.*",
    "sweeplab.models.*",
    "sweeplab.data.*",
    "torch.nn.*",
    "torch.optim.*",
    "torchvision.models.*",
    "optuna.pruners.*",
    "optuna.samplers.*",
    "hydra_plugins.hydra_optuna_sweeper.*",
)

# The data's facts a model constructor may ask for by naming them as parameters.
DATA_FACTS = ("input_shape", "in_features", "in_channels", "num_classes")


def build(config, *, key: str = "config", trusted: bool = True, **kwargs):
    """``instantiate(config)``; a target that does not import, or rejects its arguments, is one ConfigError naming
    ``key``. ``trusted=False`` limits targets to SAFE_TARGETS (for configs this user did not write)."""
    whitelist = UNSAFE_DISABLE_EXECUTION_CHECKS if trusted else SAFE_TARGETS
    target = _target_of(config)
    if target and trusted:
        callable_ = import_target(target, key)
        check_arguments(callable_, config, key, kwargs)
    try:
        return instantiate(config, _execution_whitelist_=whitelist, **kwargs)
    except SweeplabError:
        raise
    except InstantiationException as error:
        raise ConfigError(f"{key}: {_cause(error)}") from None
    except Exception as error:
        raise ConfigError(f"{key}._target_={target} rejected its settings: {first_line(error)}") from None


def build_model(config, facts: dict, *, trusted: bool = True):
    """The model config's target, given each data fact its constructor names and the config does not set."""
    callable_ = import_target(_target_of(config), "model") if trusted else None
    wanted = _parameters(callable_) if callable_ else set(DATA_FACTS)
    given = {name: value for name, value in facts.items() if name in wanted and name not in config}
    return build(config, key="model", trusted=trusted, **given)


def import_target(target: str | None, key: str):
    if not target:
        raise ConfigError(f"{key} has no _target_; name the class to build, e.g. {key}._target_=my_package.MyClass")
    quiet = logging.getLogger("hydra.utils")  # it logs its own ERROR before raising; ours is the one line
    level, quiet.level = quiet.level, logging.CRITICAL
    try:
        return get_object(target)
    except Exception as error:
        raise ConfigError(
            f"{key}._target_={target} cannot be imported ({first_line(error.__cause__ or error)}); "
            f"check the name, and that its package is installed or on PYTHONPATH"
        ) from None
    finally:
        quiet.level = level


def check_arguments(callable_, config, key: str, kwargs: dict) -> None:
    """Keys the target's signature does not take fail here, naming the key, rather than in a traceback later."""
    parameters = _signature(callable_)
    if parameters is None or any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    for name in [*_keys(config), *kwargs]:
        if name not in parameters:
            accepted = ", ".join(p for p in parameters if p not in ("self", "params"))
            raise ConfigError(
                f"{key}.{name} is not a parameter of {_target_of(config)} (it takes: {accepted}); "
                f"remove it or fix its name"
            )
        default = parameters[name].default
        value = config[name] if name in _keys(config) else None
        if isinstance(default, (tuple, list)) and value is not None and not isinstance(value, (tuple, list, ListConfig)):
            raise ConfigError(
                f"{key}.{name}={value!r}, but {_target_of(config)} takes {len(default)} values there, like its default "
                f"{tuple(default)}; write e.g. '{key}.{name}=[{', '.join(map(str, default))}]'"
            )


def _target_of(config) -> str | None:
    target = config.get("_target_") if isinstance(config, (dict, DictConfig)) else None
    return str(target) if target else None


def _keys(config) -> list[str]:
    keys = config.keys() if isinstance(config, (dict, DictConfig)) else []
    return [k for k in keys if not (k.startswith("_") and k.endswith("_"))]


def _signature(callable_) -> dict | None:
    try:
        return dict(inspect.signature(callable_).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        return None


def _parameters(callable_) -> set[str]:
    parameters = _signature(callable_) or {}
    return {name for name, p in parameters.items() if p.kind is not p.VAR_KEYWORD}


def _cause(error: InstantiationException) -> str:
    cause = error.__cause__
    return first_line(cause) if cause else first_line(error)

