"""SLURM through hydra-submitit-launcher (`hydra/launcher=slurm`): before the first job, the trial's request is
fitted to the cluster's nodes (cluster.py) and, where the cluster keeps no accounting, its jobs are followed with
squeue (watcher.py); a job the scheduler ends fails its trial with the scheduler's reason (ended.py)."""
import logging

from sweeplab import compat

log = logging.getLogger(__name__)


def is_slurm(launcher_config) -> bool:
    return str(launcher_config.get("_target_", "")).endswith("SlurmLauncher")


def prepare(launcher, launch):
    """Check and complete the launcher's request for this cluster (ConfigError before any job if no node fits it);
    the launch function to use, which turns jobs SLURM ended into failed trials."""
    from sweeplab.slurm import cluster, ended, watcher

    params = compat.launcher_params(launcher)
    changes, where = cluster.fit(params)
    params.update(changes)
    log.info(where)
    quiet = watcher.install()
    if quiet:
        log.info(quiet)
    return ended.check(launch)
