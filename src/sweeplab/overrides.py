"""The command line's overrides, checked before Hydra composes the config.

Hydra reports an override that does not parse, or a config group option that does not exist
(`dataset=imagenet`, `hydra/sweeper/pruner=nope`), in a multi-line message; here each becomes one line
that names the wrong value and the choices.
"""
import difflib
import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from sweeplab.compat import ConfigRepository, create_config_search_path
from sweeplab.errors import ConfigError, first_line


def check_overrides(config_dir: str, config_name: str, overrides: list[str]) -> None:
    """Raise ConfigError for the first override that does not parse or names a missing group option."""
    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed.append(parser.parse_override(text))
        except HydraException as error:
            reason = str(error).splitlines()[-1] if str(error) else "not valid override grammar"
            raise ConfigError(
                f"cannot read the override {text!r}: {reason} (see https://hydra.cc/docs/advanced/override_grammar/basic)"
            ) from None
    repository = ConfigRepository(search_path(config_dir, config_name, parsed))
    for override in parsed:
        group = override.key_or_group
        if override.is_delete() or not repository.group_exists(group):
            continue  # plain keys are checked against the composed config later, by the job and the sweeper
        options = repository.get_group_options(group)
        unknown = [name for name in _named_options(override) if name not in options]
        if unknown:
            raise ConfigError(
                f"{group}={unknown[0]} does not exist: choose one of {', '.join(sorted(options))}"
            )


def search_path(config_dir: str, config_name: str, parsed: list[Override]) -> ConfigSearchPath:
    """Hydra's search path for this app: its config folder, then the primary config's `hydra.searchpath`
    (e.g. pkg://sweeplab.conf, where sweeplab's groups live), or the command line's, as Hydra itself builds it."""
    path = create_config_search_path(config_dir)
    extra = next((o.value() for o in parsed if o.key_or_group == "hydra.searchpath" and not o.is_delete()), None)
    if extra is None:
        primary = Path(config_dir) / f"{config_name}.yaml"
        extra = OmegaConf.select(OmegaConf.load(primary), "hydra.searchpath") if primary.is_file() else None
    schema = path.get_path().pop(-1)  # structured configs stay last, as in Hydra's own loader
    for entry in extra or ():
        if isinstance(entry, str):
            path.append(provider="hydra.searchpath in main", path=entry)
    path.append(schema.provider, schema.path)
    return path


def _named_options(override: Override) -> list[str]:
    if not override.is_sweep_override():
        value = override.value()
        return [value] if isinstance(value, str) else []
    sweep = override.value()
    if isinstance(sweep, ChoiceSweep):
        return [str(v) for v in sweep.list if isinstance(v, str)]
    return []


# Nodes whose keys go to a constructor: an added key there is read (and checked against its signature); under
# metrics. an added key is a metric of the user's own.
BUILT_NODES = ("model.", "optimizer.", "loss.", "dataset.source.", "metrics.")


def unread_additions(cfg, task_overrides) -> list[str]:
    """One warning line for each `+key=value` that adds a key nothing reads, naming the closest real key."""
    warnings = []
    for override in task_overrides:
        if not override.startswith("+") or override.startswith("++"):
            continue
        key = override[1:].split("=", 1)[0]
        if key.startswith(BUILT_NODES) or key.startswith("hydra."):
            continue
        known = [k for k in config_keys(cfg) if k != key]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"warning: {override} adds a key that nothing reads{hint}")
    return warnings


def config_keys(cfg, prefix: str = "") -> list[str]:
    """Every key of a config, dotted (`optimizer.lr`), nodes and leaves alike."""
    keys = []
    for key in cfg.keys() if isinstance(cfg, DictConfig) else []:
        name = f"{prefix}{key}"
        keys.append(name)
        value = cfg._get_node(key)
        if isinstance(value, DictConfig):
            keys += config_keys(value, f"{name}.")
    return keys


def not_in_config_message(error: Exception, config_dir: str, config_name: str, overrides: list[str]) -> str | None:
    """Hydra's 4-line 'Could not override' message as one line with the closest real key, or None if it is
    another error."""
    match = re.search(r"Could not override '([^']+)'", str(error))
    if not match:
        return None
    key = match.group(1)
    value = next((o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == key), "...")
    repository = ConfigRepository(search_path(config_dir, config_name, []))
    groups = [o for o in overrides if "=" in o and repository.group_exists(o.split("=", 1)[0])]
    try:
        with initialize_config_dir(config_dir=config_dir):
            cfg = compose(config_name, overrides=groups, return_hydra_config=key.startswith("hydra."))
        close = difflib.get_close_matches(key, config_keys(cfg), n=1)
    except Exception:
        close = []
    if close:
        return f"{key} is not a key of the config; did you mean {close[0]}={value}?"
    return f"{key} is not a key of the config; to add a new key, write +{key}={value}"


def check_resolvable(cfg) -> None:
    """Every job setting resolves, or one line says which does not and how to fix it (a dataset config without
    val_size leaves `val_size: ${dataset.val_size}` unresolvable: Hydra's message would be a traceback)."""
    from omegaconf.errors import OmegaConfBaseException

    for key in cfg:
        if key == "hydra":
            continue
        try:
            OmegaConf.to_container(cfg[key], resolve=True) if isinstance(cfg[key], DictConfig) else cfg[key]
        except OmegaConfBaseException as error:
            dataset = OmegaConf.select(cfg, "dataset.name", default=None)
            if key == "val_size" and "dataset.val_size" in str(error):
                raise ConfigError(
                    f"the dataset config{f' {dataset!r}' if dataset else ''} sets no val_size (how many training "
                    f"images to hold out for validation); add e.g. `val_size: 5000` to it, or pass val_size=5000"
                ) from None
            raise ConfigError(f"{key} cannot be resolved: {first_line(error)}") from None


SWEEP_ONLY = ("hydra.sweeper.", "hydra/sweeper/")


def unused_without_multirun(overrides: list[str]) -> str | None:
    """One warning line for sweeper keys given to a single job (no -m), which nothing reads."""
    keys = [o for o in overrides if o.lstrip("+~").startswith(SWEEP_ONLY)]
    if not keys:
        return None
    return (f"warning: {' '.join(keys)} {'is' if len(keys) == 1 else 'are'} read only by a sweep, and this single job "
            f"ignores {'it' if len(keys) == 1 else 'them'}; add -m to sweep (python train.py -m hydra/sweeper=optuna ...)")
