"""The question a study answers: its search space (keys and distributions) and every fixed setting that changes the
objective (dataset, model, optimizer, loss, objective, epochs, seeds, data settings). A study stores it when it is
created; the default study name ends in a short hash of it, so a changed question under the default name is a new
study, and a changed question under a name the user gave is one line before any work.

Settings that do not change the objective (pruner, sampler, n_jobs, population, threads, device, tracking) are not
part of it: they may change between runs of a study, and each trial records the ones it ran with."""
import hashlib
import json

from omegaconf import DictConfig, OmegaConf

from sweeplab import compat

# Job settings that change how fast or where a trial runs, or where it is recorded, never its objective.
NOT_THE_QUESTION = ("hydra", "mlflow", "threads", "progress", "device", "cuda_graph", "data_dir", "extra_data_dirs",
                    "download")


def parse_space(lines: list[str]) -> tuple[dict, dict, list]:
    """The searched distributions, the fixed values and the fixed overrides (deletions), from `key=value` lines
    (hydra.sweeper.params, then the command line's overrides: a later line wins)."""
    distributions, fixed, fixed_overrides = compat.create_params_from_overrides(lines)
    for name in fixed:
        distributions.pop(name, None)
    return distributions, fixed, fixed_overrides


def of(config: DictConfig, distributions: dict) -> dict:
    """The study's question: ``space`` {key: distribution} and ``fixed`` {dotted key: value} (JSON values)."""
    fixed = {}
    for key in config:
        if key in NOT_THE_QUESTION or (key == "metrics" and not config[key]):
            continue  # no metrics of the user's own: the question studies asked before `metrics:` existed
        try:
            value = OmegaConf.to_container(config[key], resolve=True) if isinstance(config[key], DictConfig) \
                else OmegaConf.select(config, str(key), throw_on_resolution_failure=True)
        except Exception as error:  # e.g. a dataset without val_size: the plan reports it in one line
            value = f"<unresolved: {type(error).__name__}>"
        fixed.update(_flatten(str(key), value))
    searched = [name.replace("/", ".") for name in distributions]
    fixed = {k: v for k, v in fixed.items() if not any(k == s or k.startswith(s + ".") for s in searched)}
    space = {name: repr(distribution) for name, distribution in sorted(distributions.items())}
    return json.loads(json.dumps({"space": space, "fixed": fixed}, sort_keys=True, default=str))


def short_hash(question: dict) -> str:
    return hashlib.sha256(json.dumps(question, sort_keys=True).encode()).hexdigest()[:6]


def differences(stored: dict, asked: dict) -> list[str]:
    """What differs between a study's stored question and the one asked now, each as `key: old -> new`."""
    found = []
    for part, label in (("space", "searched "), ("fixed", "")):
        old, new = stored.get(part, {}), asked.get(part, {})
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                found.append(f"{label}{key}: {_short(old.get(key, 'not set'))} -> {_short(new.get(key, 'not set'))}")
    return found


def _short(value) -> str:
    text = str(value).replace("Distribution", "")
    return text if len(text) <= 60 else text[:57] + "..."


def _flatten(prefix: str, value) -> dict:
    if isinstance(value, dict):
        flat = {}
        for key, inner in value.items():
            flat.update(_flatten(f"{prefix}.{key}", inner))
        return flat or {prefix: {}}
    return {prefix: value}


def hash_resolver(*, _root_: DictConfig) -> str:
    """`${sweeplab_question_hash:}`, in the default study name: the hash of the question this command asks (the
    same question the sweep stores on its study), from hydra.sweeper.params and the command line's overrides."""
    try:
        params = OmegaConf.select(_root_, "hydra.sweeper.params") or {}
        lines = [f"{k}={v}" for k, v in params.items()] + list(OmegaConf.select(_root_, "hydra.overrides.task") or [])
        return short_hash(of(_root_, parse_space(lines)[0]))
    except Exception:  # a search space that does not parse: the plan says why, in one line
        return "unknown"
