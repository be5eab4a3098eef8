"""In-process jobs (Hydra's basic launcher) with one copy of the config each, not four.

Hydra's run_job deep-copies a job's config for the task, deep-copies its hydra node for the JobReturn, and masks the
hydra node out twice for HydraConfig: OmegaConf copies ~40 µs a node, so that is ~25 ms of a one-epoch trial's
~60 ms launch. Here the job gets what run_job gives it — output folder, `.hydra/` files, log file, HydraConfig,
env_set, chdir, callbacks, a JobReturn holding the result or the exception — from the config the loader composed for
this job alone (sweep/compose.py): HydraConfig masks its hydra node out once, and the task gets a masked copy of the
rest. Any other launcher, and jobs run with Hydra's own launcher outside a sweeplab sweep, are Hydra's own.
"""
import logging
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import (
    JobReturn, JobRuntime, JobStatus, configure_log, env_override, filter_overrides, setup_globals,
)
from omegaconf import OmegaConf, open_dict, read_write

from sweeplab import compat
from sweeplab.sweep.console import LAUNCHER_LOGGERS

LAUNCHER_LOG = logging.getLogger(LAUNCHER_LOGGERS[0])  # Hydra's basic launcher's


def is_basic(launcher) -> bool:
    return type(launcher).__name__ == "BasicLauncher" and getattr(launcher, "hydra_context", None) is not None


def launch(launcher, overrides: list[str], number: int) -> JobReturn:
    """What BasicLauncher.launch does for one job, with the lighter run_job below."""
    context, master = launcher.hydra_context, launcher.config
    setup_globals()
    if not getattr(launcher, "sweep_logging_set", False):  # after the first job, each job's end has set it again
        _sweep_logging(launcher)
        launcher.sweep_logging_set = True
    Path(str(master.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    # BasicLauncher's line for the job, which sweep/console.py turns into "Trial <n>: <values>"
    LAUNCHER_LOG.info(f"\t#{number} : {' '.join(filter_overrides(overrides))}")
    config = context.config_loader.load_sweep_config(master, list(overrides))
    with open_dict(config):
        config.hydra.job.id = str(number)
        config.hydra.job.num = number
    try:
        with compat.execution_whitelist(context.execution_whitelist, reset=True):
            return _run_job(context, launcher.task_function, config)
    finally:
        _sweep_logging(launcher)


def _sweep_logging(launcher) -> None:
    """The sweep's own logging (hydra.hydra_logging), before and after each job, as BasicLauncher sets it."""
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose,
                  execution_whitelist=launcher.hydra_context.execution_whitelist)


def _run_job(context, task_function, config) -> JobReturn:
    old_cwd, original = os.getcwd(), HydraConfig.instance().cfg
    output_dir = os.path.abspath(os.path.join(str(OmegaConf.select(config, "hydra.sweep.dir")),
                                              str(OmegaConf.select(config, "hydra.sweep.subdir"))))
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = output_dir
    HydraConfig.instance().set_config(config)
    hydra_cfg = HydraConfig.instance().cfg  # its own copy of the hydra node: the JobReturn's
    chdir = hydra_cfg.hydra.job.chdir
    try:
        with read_write(hydra_cfg.hydra.job.env_set):
            OmegaConf.resolve(hydra_cfg.hydra.job.env_set)
        task_cfg = OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
        OmegaConf.set_struct(task_cfg, OmegaConf.is_struct(config))
        ret = JobReturn(cfg=task_cfg, hydra_cfg=hydra_cfg, overrides=OmegaConf.to_container(config.hydra.overrides.task))
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        if chdir:
            os.chdir(output_dir)
        ret.working_dir = os.getcwd()
        configure_log(config.hydra.job_logging, config.hydra.verbose,
                      execution_whitelist=context.execution_whitelist)
        if config.hydra.output_subdir is not None:
            hydra_output = Path(output_dir) / str(config.hydra.output_subdir)
            compat.save_config(task_cfg, "config.yaml", hydra_output)
            compat.save_config(hydra_cfg, "hydra.yaml", hydra_output)
            compat.save_config(config.hydra.overrides.task, "overrides.yaml", hydra_output)
        ret.task_name = JobRuntime.instance().get("name")
        _call(context.callbacks, task_function, config, task_cfg, ret, hydra_cfg.hydra.job.env_set)
        return ret
    finally:
        HydraConfig.instance().cfg = original
        if chdir:
            os.chdir(old_cwd)


def _call(callbacks, task_function, config, task_cfg, ret: JobReturn, env_set) -> None:
    """The task between the callbacks' on_job_start and on_job_end: an Exception becomes the JobReturn's FAILED value
    (logged to the job's log file, as Hydra does); anything else (Ctrl-C) goes on up after on_job_end."""
    with env_override(env_set):
        callbacks.on_job_start(config=config, task_function=task_function)
        try:
            ret.return_value = task_function(task_cfg)
            ret.status = JobStatus.COMPLETED
        except Exception as error:
            ret.return_value, ret.status = error, JobStatus.FAILED
            compat.log_job_error_to_file()
        except BaseException as error:
            ret.return_value, ret.status = error, JobStatus.FAILED
            raise
        finally:
            for handler in logging.getLogger().handlers:
                handler.flush()
            callbacks.on_job_end(config=config, job_return=ret)
