"""A sweep job's config, composed once per choice of config groups instead of once per trial.

Hydra's basic launcher composes every job's config from scratch (config files read, defaults list, merges): about
two thirds of its per-job work, and the largest part of a short trial's overhead. Composition is, in Hydra's own
order, the defaults list with the group overrides (``model=cnn``), then the value overrides (``batch_size=64``) set
on the result. Trials of a study differ only in values as a rule, so the first step is kept per set of group
overrides and the second is done on a copy, as Hydra does it (its own override code).

Each kept composition is checked once against Hydra's full composition of the same job; where they differ, that
choice of groups goes on being composed in full.
"""
import copy
import functools
import logging
import pickle

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from sweeplab import compat

log = logging.getLogger(__name__)


class ComposeOnce:
    """Hydra's config loader, with ``load_sweep_config`` reusing compositions; everything else is delegated."""

    def __init__(self, loader):
        self.loader = loader
        parser = OverridesParser.create()
        # Hydra's override grammar costs ~1 ms a line (ANTLR); most of a study's lines repeat from trial to trial.
        self.parse = functools.lru_cache(maxsize=4096)(lambda line: parser.parse_overrides([line])[0])
        # Each kept composition pickled: a job's copy is unpickled, ~6× faster than OmegaConf's deepcopy.
        self.templates: dict[tuple, bytes | None] = {}  # None: compose that choice of groups in full

    def __getattr__(self, name: str):
        return getattr(self.loader, name)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        groups = set(master_config.hydra.runtime.choices)
        parsed = [self.parse(line) for line in sweep_overrides]
        is_group = [o.key_or_group in groups and not isinstance(o.value(), dict) for o in parsed]
        key = tuple(o.input_line for o, group in zip(parsed, is_group) if group)
        values = [o for o, group in zip(parsed, is_group) if not group]
        if key not in self.templates:
            template = self.loader.load_sweep_config(master_config, list(key))
            full = self.loader.load_sweep_config(master_config, list(sweep_overrides))
            try:
                template = pickle.dumps(template, protocol=pickle.HIGHEST_PROTOCOL)
                fast = self._apply(template, master_config, values, parsed)
                same = OmegaConf.to_container(full) == OmegaConf.to_container(fast)
            except (pickle.PicklingError, TypeError, AttributeError):  # a value that does not pickle
                same = False
            if not same:
                log.info("config groups %s: composed in full for every job", list(key) or "(defaults)")
            self.templates[key] = template if same else None
            return full
        template = self.templates[key]
        if template is None:
            return self.loader.load_sweep_config(master_config, list(sweep_overrides))
        return self._apply(template, master_config, values, parsed)

    @staticmethod
    def _apply(template: bytes, master_config: DictConfig, values: list, parsed: list) -> DictConfig:
        config = pickle.loads(template)
        compat.ConfigLoaderImpl._apply_overrides_to_config(values, config)
        # The job's overrides as Hydra lists them: the sweep's own after the command line's, in their order.
        config.hydra.overrides.hydra = [*master_config.hydra.overrides.hydra,
                                        *(o.input_line for o in parsed if o.is_hydra_override())]
        config.hydra.overrides.task = [o.input_line for o in parsed if not o.is_hydra_override()]
        OmegaConf.copy_cache(from_config=master_config, to_config=config)
        return config


def compose_once(launcher) -> None:
    """Give Hydra's basic launcher (it runs the jobs in this process) a loader that reuses compositions."""
    context = getattr(launcher, "hydra_context", None)
    if type(launcher).__name__ == "BasicLauncher" and context is not None:
        launcher.hydra_context = copy.copy(context)
        launcher.hydra_context.config_loader = ComposeOnce(context.config_loader)
