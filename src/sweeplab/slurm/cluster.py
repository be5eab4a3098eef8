"""What the cluster offers, read with `sinfo`, and whether a trial's request (cpus_per_task, mem_gb, gpus_per_node)
fits one of the partition's nodes: checked once, before the first job is submitted."""
import re
import shutil
import subprocess
from dataclasses import dataclass

from sweeplab.errors import ConfigError


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    memory_mb: int
    gpus: int

    def describe(self) -> str:
        gpus = f"{self.gpus} GPU{'s' if self.gpus > 1 else ''}" if self.gpus else "no GPU"
        return f"{self.name}: {self.cpus} CPUs, {self.memory_mb / 1024:.1f} GB, {gpus}"


def sinfo(*args: str) -> str:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        raise ConfigError("hydra/launcher=slurm submits each trial with sbatch, which is not on this machine's PATH: "
                          "start the sweep on a login node of the cluster, or use hydra/launcher=submitit_local to "
                          "run the trials on this machine")
    result = subprocess.run(["sinfo", "--noheader", *args], capture_output=True, text=True, timeout=60)
    if result.returncode:
        message = (result.stderr.strip() or result.stdout.strip() or f"exit code {result.returncode}").splitlines()[0]
        raise ConfigError(f"SLURM does not answer on this machine (sinfo: {message}); `sinfo` must work before "
                          "hydra/launcher=slurm can submit")
    return result.stdout


def partitions() -> tuple[list[str], str | None]:
    """The cluster's partitions and its default one (marked `*` by sinfo), if it has one."""
    names = list(dict.fromkeys(sinfo("--format=%P").split()))
    default = next((name[:-1] for name in names if name.endswith("*")), None)
    return [name.rstrip("*") for name in names], default


def nodes(partition: str) -> list[Node]:
    found = []
    for line in sinfo("--Node", f"--partition={partition}", "--format=%N|%c|%m|%G").splitlines():
        name, cpus, memory, gres = line.strip().split("|")
        found.append(Node(name, int(cpus), int(memory.rstrip("+")), gpu_count(gres)))
    return found


def gpu_count(gres: str) -> int:
    """GPUs in a node's GRES as sinfo prints it: `gpu:4`, `gpu:a100:2(S:0-1)`, `gpu:a100:2,gpu:v100:1`, `(null)`."""
    return sum(int(match) for match in re.findall(r"(?:^|,)gpu(?::[^:,()]+)?:(\d+)", gres))


def fit(params: dict) -> tuple[dict, str]:
    """The launcher keys to change for this cluster (gpus_per_node when left null), and a line naming where the
    trials go; ConfigError, naming the largest node and the overrides that fit it, when no node can run a trial."""
    names, default = partitions()
    partition = params.get("partition") or default
    if partition is None:
        raise ConfigError(f"this SLURM cluster has no default partition; set hydra.launcher.partition=<one of "
                          f"{', '.join(names)}>")
    if partition not in names:
        raise ConfigError(f"SLURM has no partition {partition!r} here (its partitions: {', '.join(names)}); set "
                          f"hydra.launcher.partition=<one of them>")
    members = nodes(partition)
    changes = {}
    gpus = params.get("gpus_per_node")
    if gpus is None:  # one GPU per trial where the partition has them, none where it has not
        gpus = 1 if any(node.gpus for node in members) else 0
        if gpus:
            changes["gpus_per_node"] = gpus
    elif gpus > 0 and not any(node.gpus for node in members):
        with_gpus = [name for name in names if name != partition and any(n.gpus for n in nodes(name))]
        raise ConfigError(
            f"SLURM partition {partition!r} has no GPUs, and hydra.launcher.gpus_per_node={gpus} asks for "
            f"{gpus} per trial; set hydra.launcher.gpus_per_node=0 to train on CPUs"
            + (f", or hydra.launcher.partition={with_gpus[0]}" if with_gpus else ""))
    cpus, mem_gb = params.get("cpus_per_task") or 1, params.get("mem_gb") or 0
    request = f"{cpus} CPU{'s' if cpus > 1 else ''}" + (f", {mem_gb} GB" if mem_gb else "") + (
        f", {gpus} GPU{'s' if gpus > 1 else ''}" if gpus else "")
    if any(n.cpus >= cpus and n.memory_mb >= mem_gb * 1024 and n.gpus >= gpus for n in members):
        largest = max(members, key=lambda n: (n.gpus, n.cpus, n.memory_mb))
        return changes, (f"SLURM partition {partition} ({len(members)} node{'s' if len(members) > 1 else ''}, "
                         f"largest {largest.describe()}): each trial asks for {request}")
    largest = max(members, key=lambda n: (n.gpus >= gpus, n.cpus, n.memory_mb))
    fixes = []
    if cpus > largest.cpus:
        fixes.append(f"hydra.launcher.cpus_per_task={largest.cpus}")
    if mem_gb * 1024 > largest.memory_mb:  # sinfo says 1 MB where slurm.conf gives no RealMemory: ask for none
        fixes.append(f"hydra.launcher.mem_gb={largest.memory_mb // 1024 or 'null'}")
    if gpus > largest.gpus:
        fixes.append(f"hydra.launcher.gpus_per_node={largest.gpus}")
    raise ConfigError(f"no node of SLURM partition {partition!r} can run a trial that asks for {request}: its "
                      f"largest is {largest.describe()}; set {' '.join(fixes)}")
