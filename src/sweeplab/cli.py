"""The Hydra edge: compose the config, run the job, report user errors in one line."""
import gc
import json
import os
import re
import shutil
import sys
import threading
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sweeplab import compat, interrupts
from sweeplab.errors import SweeplabError, first_line
from sweeplab.paths import set_project_root


def task(cfg: DictConfig) -> float:
    from sweeplab import timing

    job = Path(HydraConfig.get().runtime.output_dir).name  # a sweep's job folder: its trial number
    try:
        with timing.section("job"):
            return _task(cfg)
    finally:
        timing.write(job)


def _task(cfg: DictConfig) -> float:
    start_up = _pause_collector_for_start_up()
    from sweeplab.settings import JobSettings  # imported here so that `--help` and `--cfg` stay fast

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    from sweeplab.overrides import check_resolvable, unread_additions

    for warning in unread_additions(cfg, hydra_cfg.overrides.task):
        sys.stderr.write(f"{warning}\n")
    link = _sweep_link()
    try:
        check_resolvable(cfg)
        JobSettings.from_config(cfg)  # bad values fail before the slow imports (MLflow, Optuna) below
        from sweeplab.job import run_job
        from sweeplab.labels import RunLabels

        from sweeplab.grid_parent import PARENT_ENV

        if link and "population" in link:  # several trials of a study, trained together as one stack
            from sweeplab.populations.job import run_population

            return run_population(cfg, output_dir, RunLabels.from_hydra(hydra_cfg), list(hydra_cfg.overrides.task),
                                  link)
        objective = run_job(cfg, output_dir, RunLabels.from_hydra(hydra_cfg), _trial_link(link),
                            parent_run_id=os.environ.get(PARENT_ENV))
        if start_up:
            gc.freeze()  # what start-up loaded lives as long as the process: keep the collector off it for good
        return objective
    except SweeplabError as error:
        if link:
            raise  # inside an Optuna trial: the sweeper records it as FAIL and goes on
        _discard(output_dir)
        sys.stderr.write(f"error: {error}\n")
        sys.exit(2)
    finally:
        gc.enable()


def _sweep_link() -> dict | None:
    """What the Optuna sweeper told this job about its trial(s), in the job's environment; None outside a sweep."""
    from sweeplab.names import TRIAL_ENV

    value = os.environ.get(TRIAL_ENV)
    return json.loads(value) if value else None


def _trial_link(link: dict | None):
    """The link to this job's Optuna trial, or None; Optuna (~0.5 s of imports) loads only inside a trial."""
    if not link:
        return None
    from sweeplab import timing
    from sweeplab.sweep.trial_link import TrialLink

    with timing.section("optuna"):
        return TrialLink.from_link(link)


def _pause_collector_for_start_up() -> bool:
    """The first job in a process loads torch, MLflow and the rest: ~500 000 objects that live as long as the process.
    Collecting cycles while they load, and again over all of them afterwards, costs about a third of a short job's CPU
    (train.py pauses the collector from its first line). Later jobs of an in-process sweep run with it as usual."""
    if gc.isenabled() and "sweeplab.job" in sys.modules:
        return False
    gc.disable()
    return True


def _discard(output_dir: Path) -> None:
    """Remove the job's half-written output folder, and its date folder if that is left empty."""
    shutil.rmtree(output_dir, ignore_errors=True)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", output_dir.parent.name):  # never a folder the user named
        try:
            output_dir.parent.rmdir()
        except OSError:
            pass


class CheckOutputDir(Callback):
    """An output folder that cannot be created fails in one line here, not in a traceback from Hydra."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _check_writable(Path(config.hydra.run.dir), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        _check_writable(Path(config.hydra.sweep.dir), "hydra.sweep.dir")


def _check_writable(path: Path, key: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        problem = None if os.access(path, os.W_OK) else "not writable"
    except OSError as error:
        problem = error.strerror
    if problem:
        sys.stderr.write(f"error: cannot write output directory {path} ({problem}); set {key}=<a writable folder>\n")
        raise SystemExit(2)  # a BaseException: Hydra's callback runner lets it through


def _whole_config_for_hydra_node(argv: list[str], package: str | None) -> list[str]:
    """`--cfg hydra --resolve` resolves the hydra node after Hydra has dropped the job's keys, so the values built
    from them (the study name, the sweep folder) cannot resolve. `--cfg all -p hydra` shows the same node, resolved
    within the whole config."""
    rewritten = []
    for i, arg in enumerate(argv):
        if arg in ("--cfg=hydra", "-chydra"):
            arg = arg[:-len("hydra")] + "all"
        elif arg == "hydra" and i and argv[i - 1] in ("--cfg", "-c"):
            arg = "all"
        rewritten.append(arg)
    return rewritten + (["--package", "hydra"] if package in (None, "_global_") else [])


def config_dir(config_path: str, caller_file: str | None) -> Path:
    """config_path as Hydra reads it in the caller's own @hydra.main: relative to the calling script's folder."""
    base = Path(caller_file).resolve().parent if caller_file else Path.cwd()
    return (base / config_path).resolve()


def register_configs() -> None:
    """sweeplab's `hydra/sweeper=optuna`, for this process only (see sweeplab.sweep.plugin), and the resolver that
    lists the app's config groups in `--help`."""
    from sweeplab.sweep.plugin import register

    register()
    OmegaConf.register_resolver("sweeplab_config_groups", _config_groups, replace=True)
    OmegaConf.register_resolver("sweeplab_directions", _directions, replace=True)
    OmegaConf.register_resolver("sweeplab_question_hash", _question_hash, replace=True)


def _directions(several, one):
    """The sweeper's default direction: the objective's directions (several objectives) or its direction (one)."""
    return list(several) if several is not None else one


def _question_hash(*, _root_) -> str:
    from sweeplab.sweep.question import hash_resolver  # Optuna loads only when a sweep's name is resolved

    return hash_resolver(_root_=_root_)


def _config_groups(sources) -> str:
    """`group: option, ...` lines for the app's groups in every config source, those of `hydra.searchpath` included
    (Hydra's own $APP_CONFIG_GROUPS sees only the primary config's folder)."""
    from sweeplab.compat import ConfigRepository, ConfigSearchPathImpl
    from hydra.core.object_type import ObjectType

    search_path = ConfigSearchPathImpl()
    for source in sources:
        search_path.append(source.provider, f"{source.schema}://{source.path}")
    repository = ConfigRepository(search_path)

    def groups(parent: str) -> list[str]:
        found = []
        for name in repository.get_group_options(parent, ObjectType.GROUP):
            group = f"{parent}/{name}" if parent else name
            found += [group] if repository.get_group_options(group, ObjectType.CONFIG) else []
            found += groups(group)
        return found

    lines = [f"{g}: {', '.join(sorted(repository.get_group_options(g)))}" for g in sorted(groups("")) if g != "hydra"
             and not g.startswith("hydra/")]
    return "\n".join(lines)


def main(config_path: str = "conf", config_name: str = "config", caller_file: str | None = None) -> None:
    """Run a sweeplab app: its primary config is `<config_path>/<config_name>.yaml`, config_path relative to the
    calling script (caller_file), whose folder is also the project root that relative paths resolve against.

    Ctrl-C or SIGTERM ends it in one line and exit 130 (143): a sweep fails its running trials as interrupted (their
    MLflow runs and the parent run end KILLED) and says what is complete; rerunning the same command continues."""
    interrupts.install()
    try:
        _main(config_path, config_name, caller_file)
    except KeyboardInterrupt as stop:
        name = interrupts.received().name
        said = str(stop) or "stopped before the end; its MLflow run, if any, ended KILLED"
        sys.stderr.write(f"interrupted ({name}): {said}\n")
        sys.stdout.flush()
        sys.stderr.flush()
        if threading.active_count() > 1:  # parallel trial slots still wait on their jobs: do not wait for them
            os._exit(interrupts.EXIT_CODES[interrupts.received()])
        sys.exit(interrupts.EXIT_CODES[interrupts.received()])


def _main(config_path: str, config_name: str, caller_file: str | None) -> None:
    # Hydra instantiates config callbacks without an execution whitelist; ours is trusted code.
    warnings.filterwarnings("ignore", r"hydra\.utils\.instantiate\(\) resolved _target_='sweeplab\.(cli|grid_parent)\.")
    conf = config_dir(config_path, caller_file)
    set_project_root(Path(caller_file).resolve().parent if caller_file else Path.cwd())
    os.environ["SWEEPLAB_APP_NAME"] = Path(caller_file).stem if caller_file else "sweeplab"
    args = compat.get_args_parser().parse_args()
    if args.run + args.multirun + (args.cfg is not None) + (args.info is not None) + args.shell_completion > 1:
        sys.stderr.write("error: use only one of --run, --multirun (-m), --cfg, --info, --shell-completion; "
                         "e.g. `python train.py hydra/sweeper=optuna --cfg hydra` to see a sweep's config\n")
        sys.exit(2)
    if args.cfg == "hydra" and args.resolve:
        sys.argv = _whole_config_for_hydra_node(sys.argv, args.package)
    register_configs()
    if args.overrides:
        from sweeplab.overrides import check_overrides, unused_without_multirun

        if not args.multirun and (warning := unused_without_multirun(args.overrides)):
            sys.stderr.write(f"{warning}\n")

        try:
            check_overrides(str(conf), config_name, args.overrides)
        except SweeplabError as error:
            sys.stderr.write(f"error: {error}\n")
            sys.exit(2)
    # Hydra's own errors reach us as exceptions (not printed over several lines and exit 1), to say in one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra.main(config_path=str(conf), config_name=config_name)(task)()
    except CompactHydraException as error:
        from sweeplab.overrides import not_in_config_message

        message = not_in_config_message(error, str(conf), config_name, args.overrides) or first_line(error)
        sys.stderr.write(f"error: {message}\n")
        sys.exit(2)
