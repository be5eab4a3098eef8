"""A population job: K trials of one study trained together as one stack, each recorded as its own trial, MLflow
child run and output folder, exactly as if it had run alone.

The sweeper launches it with the first member's overrides and, in the job's link to its study (sweeplab.names.
TRIAL_ENV), ``population``: the members, each with its trial id and number and the overrides in which it differs
from the first (optimizer values, seed), and ``width``: how many train at once (the members after that many are
reserves, each stepping into the stack where a member has left).
It returns each member's outcome by trial number: ``{"value": objective}``, ``{"pruned": reason}`` or
``{"failed": reason}``.
"""
import logging
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from sweeplab.building import build
from sweeplab.errors import first_line
from sweeplab.job import Prepared, TrackedTraining, new_model, prepare
from sweeplab.labels import RunLabels
from sweeplab.populations.fit import fit_population
from sweeplab.populations.member_optimizer import MemberOptimizer
from sweeplab.populations.stack import NotStackable, Stack, check_same_outputs
from sweeplab.settings import JobSettings
from sweeplab.training import fit, to_unit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    number: int
    trial_id: int
    overrides: list[str]  # where it differs from the population's first member
    folder: str  # its job folder's name, beside the population's: its trial number (confirm-<number>)


def members_of(population: list[dict]) -> list[Member]:
    return [Member(int(m["number"]), int(m["trial_id"]), list(m["overrides"]), str(m.get("folder", m["number"])))
            for m in population]


def member_config(cfg: DictConfig, member: Member) -> DictConfig:
    """The population job's config with the member's own values: what `train.py <its overrides>` composes."""
    own = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    for override in OverridesParser.create().parse_overrides(member.overrides):
        OmegaConf.update(own, override.key_or_group, override.value(), merge=False)
    return own


def run_population(cfg: DictConfig, output_dir: Path, labels: RunLabels, task_overrides: list[str], link: dict) -> dict:
    from sweeplab.sweep.trial_link import TrialLink  # Optuna loads only in sweeps

    members = members_of(link["population"])
    width = int(link.get("width", len(members)))
    configs = [member_config(cfg, m) for m in members]
    folders = [_member_folder(output_dir, m, c, task_overrides) for m, c in zip(members, configs)]
    links = TrialLink.for_trials(link, [m.trial_id for m in members])
    outcomes: dict[int, dict] = {}
    with ExitStack() as keep_alive:
        for trial_link in links:
            keep_alive.enter_context(trial_link)
        prepared = prepare(configs[0], in_trial=True)
        settings = [JobSettings.from_config(c) for c in configs]
        models = [new_model(c, prepared, s.seed) for c, s in zip(configs, settings)]
        tracked = []
        try:
            for m, c, own, trial_link, folder in zip(members, configs, settings, links, folders):
                tracked.append(TrackedTraining(c, own, prepared, labels.with_overrides(m.overrides), trial_link, folder))
            stack = _stack(models[:width], prepared)
            if stack is None:
                _one_at_a_time(configs, settings, models, tracked, prepared, outcomes, members)
            else:
                _together(stack, configs, settings, models, tracked, prepared, outcomes, members)
        except BaseException as error:
            for m, t in zip(members, tracked):
                if m.number not in outcomes:
                    t.failed(error)
            raise
    return outcomes


def _member_folder(population_dir: Path, member: Member, cfg: DictConfig, task_overrides: list[str]) -> Path:
    """The member's own job folder beside the population's, with the .hydra files a lone job would have."""
    folder = population_dir.parent / member.folder
    hydra_dir = folder / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, hydra_dir / "config.yaml")
    own_keys = {o.partition("=")[0] for o in member.overrides}
    overrides = [o for o in task_overrides if o.partition("=")[0] not in own_keys]
    OmegaConf.save(OmegaConf.create(overrides + member.overrides), hydra_dir / "overrides.yaml")
    if (population_dir / ".hydra" / "hydra.yaml").exists():
        shutil.copy(population_dir / ".hydra" / "hydra.yaml", hydra_dir / "hydra.yaml")
    return folder


def _stack(models, prepared: Prepared) -> Stack | None:
    try:
        stack = Stack(models)
        check_same_outputs(stack, models, to_unit(prepared.splits.train[0][:4], prepared.settings.device))
    except NotStackable as why:
        log.warning("this model cannot be stacked (%s): the population's members train one at a time", why)
        return None
    return stack


def _together(stack, configs, settings, models, tracked, prepared: Prepared, outcomes, members) -> None:
    first = settings[0]
    options = [{k: v for k, v in OmegaConf.to_container(c.optimizer, resolve=True).items() if not k.startswith("_")}
               for c in configs]
    width = stack.members
    optimizer = MemberOptimizer(stack, build(configs[0].optimizer, key="optimizer"), options[:width])
    histories, stopped = fit_population(
        stack, optimizer, prepared.splits, epochs=first.epochs, batch_size=first.batch_size,
        seeds=[s.seed for s in settings], on_epoch=lambda k, metrics: tracked[k].epoch(metrics),
        loss_fn=prepared.loss_fn, objective=prepared.objective, augment=prepared.data.augment,
        progress=first.progress, cuda_graph=first.cuda_graph, reserves=list(zip(models[width:], options[width:])),
        metrics=[prepared.user_metrics() for _ in members] if prepared.metrics else None,
    )
    for k, member in enumerate(members):
        if k in stopped:
            _ended(tracked[k], stopped[k], member, outcomes)
        else:
            outcomes[member.number] = {"value": tracked[k].finish(models[k], histories[k])}


def _one_at_a_time(configs, settings, models, tracked, prepared: Prepared, outcomes, members) -> None:
    for config, own, model, record, member in zip(configs, settings, models, tracked, members):
        optimizer = build(config.optimizer, key="optimizer")(model.parameters())
        try:
            history = fit(model, optimizer, prepared.splits, epochs=own.epochs, batch_size=own.batch_size,
                          seed=own.seed, progress=own.progress, on_epoch=record.epoch, cuda_graph=own.cuda_graph,
                          loss_fn=prepared.loss_fn, objective=prepared.objective, augment=prepared.data.augment,
                          metrics=prepared.user_metrics())
        except Exception as stop:
            _ended(record, stop, member, outcomes)
            continue
        outcomes[member.number] = {"value": record.finish(model, history)}


def _ended(record: TrackedTraining, stop: BaseException, member: Member, outcomes: dict) -> None:
    """A member that stopped early: pruned (KILLED run), or failed (FAILED run) without harming the others."""
    if isinstance(stop, record.trial.Pruned):
        record.pruned(stop)
        outcomes[member.number] = {"pruned": str(stop)}
    else:
        record.failed(stop)
        reason = f"{type(stop).__name__}: {first_line(stop)}"
        log.warning("Trial %d failed: %s", member.number, reason)
        outcomes[member.number] = {"failed": reason}
