"""A throw-away one-node SLURM cluster on 127.0.0.1, from Debian's `slurm-wlm` and `munge` (nothing is installed
here): munged, slurmctld and slurmd, all three with their state, sockets, keys and logs in one private folder, no
accounting database, one partition `debug` holding this machine as node `sweeplab-node`.

    python tests/slurm.py -- bash            # a shell where sinfo, sbatch, squeue and scancel reach that cluster
    python tests/slurm.py -- python train.py -m hydra/sweeper=optuna hydra/launcher=slurm ...

The command sees SLURM_CONF (the slurm.conf every SLURM command reads) and SWEEPLAB_TEST_SLURM_NODE. All three
daemons run as the user who starts this (root in CI; any other user works too, and then runs every job as itself).
The cluster is stopped, its jobs cancelled and the folder removed whatever happens; the exit code is the command's.
The tests start it through `start()` (the `slurm` fixture of tests/scaleout/conftest.py).
"""
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NODE = "sweeplab-node"
PARTITION = "debug"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo")


@dataclass
class Cluster:
    folder: Path
    conf: Path
    node: str = NODE
    partition: str = PARTITION
    daemons: list = field(default_factory=list)  # Popen objects, started in this order

    @property
    def env(self) -> dict:
        return {"SLURM_CONF": str(self.conf), "SWEEPLAB_TEST_SLURM_NODE": self.node}

    def run(self, *command: str, check: bool = True) -> str:
        """A SLURM client command (scontrol, squeue, ...) against this cluster; its stdout."""
        result = subprocess.run(command, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=30)
        if check and result.returncode:
            raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def jobs(self) -> list[dict]:
        """The cluster's jobs, finished ones included while slurmctld remembers them (MinJobAge)."""
        out = self.run("squeue", "--noheader", "--states=all", "--format=%i|%T|%r|%N|%j")
        keys = ("id", "state", "reason", "node", "name")
        return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line.strip()]

    def processes(self, job_id: str) -> dict[int, str]:
        """The processes of a running job: PID -> command line."""
        found = {}
        for pid in job_processes(self.conf, job_id):
            try:
                found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
        return found

    def hang(self, job_id: str) -> None:
        """Stop every process of a running job (SIGSTOP), as a job hung on I/O looks: SLURM still sees it RUNNING."""
        for pid in self.processes(job_id):
            os.kill(pid, signal.SIGSTOP)

    def node_state(self) -> str:
        return self.run("sinfo", "--noheader", "--nodes", self.node, "--format=%T").strip()

    def logs(self) -> str:
        return "".join(f"--- {log.name} ---\n{log.read_text(errors='replace')[-3000:]}\n"
                       for log in sorted(self.folder.glob("*.log")))


def missing() -> list[str]:
    """The SLURM and MUNGE programs this machine lacks (Debian packages `slurm-wlm` and `munge`)."""
    return [name for name in DAEMONS + CLIENTS if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()]


def start(folder: Path) -> Cluster:
    """munged, slurmctld and slurmd on loopback, their files in `folder`; waits until the node takes jobs. On any
    failure, what was started is stopped before the error leaves."""
    cluster = Cluster(folder, folder / "slurm.conf")
    try:
        socket_path = start_munge(cluster)
        write_conf(cluster, socket_path)
        cluster.daemons.append(daemon(cluster, "slurmctld", "-D", "-i", "-f", str(cluster.conf)))
        wait_until(lambda: cluster.run("scontrol", "ping", check=False).count("UP") > 0, cluster, "slurmctld", 60)
        cluster.daemons.append(daemon(cluster, "slurmd", "-D", "-N", cluster.node, "-f", str(cluster.conf)))
        wait_until(lambda: cluster.node_state() in ("idle", "mixed", "allocated"), cluster, "slurmd", 90)
    except BaseException:
        stop(cluster)
        raise
    return cluster


def start_munge(cluster: Cluster) -> Path:
    """munged with a fresh key of this cluster's own; the path of its socket."""
    folder = cluster.folder / "munge"
    folder.mkdir(mode=0o700)
    key = folder / "munge.key"
    key.touch(mode=0o600)
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)  # munged refuses a key that others may read
    socket_path = folder / "munge.socket"
    cluster.daemons.append(daemon(
        cluster, "munged", "--foreground", "--force", f"--socket={socket_path}", f"--key-file={key}",
        f"--pid-file={folder / 'munged.pid'}", f"--seed-file={folder / 'munged.seed'}",
        f"--log-file={cluster.folder / 'munged.log'}",
    ))
    wait_until(socket_path.exists, cluster, "munged", 20)
    return socket_path


def write_conf(cluster: Cluster, munge_socket: Path) -> None:
    """slurm.conf for one node: this machine's CPUs and memory as `slurmd -C` reports them, no accounting, no
    cgroups (processes are tracked through /proc), jobs killed 2 s after their SIGTERM."""
    hardware = dict(pair.split("=", 1) for pair in subprocess.run(
        [_which("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout.split() if "=" in pair)
    folder, user = cluster.folder, pwd.getpwuid(os.geteuid()).pw_name
    (folder / "state").mkdir()
    (folder / "spool").mkdir()
    cluster.conf.write_text(f"""\
ClusterName=sweeplab
SlurmctldHost={socket.gethostname()}(127.0.0.1)
SlurmUser={user}
SlurmdUser={user}
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={folder / 'state'}
SlurmdSpoolDir={folder / 'spool'}
SlurmctldPidFile={folder / 'slurmctld.pid'}
SlurmdPidFile={folder / 'slurmd.pid'}
SlurmctldLogFile={folder / 'slurmctld.log'}
SlurmdLogFile={folder / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=2
MinJobAge=600
SchedulerParameters=sched_interval=2
NodeName={cluster.node} NodeAddr=127.0.0.1 CPUs={hardware['CPUs']} RealMemory={hardware['RealMemory']} State=UNKNOWN
PartitionName={cluster.partition} Nodes={cluster.node} Default=YES MaxTime=INFINITE State=UP
""")


def daemon(cluster: Cluster, name: str, *args: str) -> subprocess.Popen:
    log = open(cluster.folder / f"{name}.out", "w")
    return subprocess.Popen([_which(name), *args], stdout=log, stderr=subprocess.STDOUT, cwd=cluster.folder,
                            env={**os.environ, **cluster.env}, start_new_session=True)


def stop(cluster: Cluster) -> None:
    """Cancel every job, wait for them to leave the node, then stop slurmd, slurmctld and munged by their PIDs (SIGTERM,
    SIGKILL after 10 s); last, any job process still alive (found by the SLURM_CONF in its environment) is killed."""
    if cluster.daemons and all(d.poll() is None for d in cluster.daemons[:2]):
        try:
            cluster.run("scancel", "--partition", cluster.partition, check=False)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and any(j["state"] in ("RUNNING", "COMPLETING", "PENDING")
                                                      for j in cluster.jobs()):
                time.sleep(0.5)
        except (OSError, RuntimeError, subprocess.SubprocessError):
            pass  # the daemons go below anyway
    for process in reversed(cluster.daemons):
        for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if process.poll() is not None:
                break
            try:
                os.killpg(process.pid, sig)
                process.wait(wait_s)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
    for pid in job_processes(cluster.conf):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def job_processes(conf: Path, job_id: str | None = None) -> list[int]:
    """PIDs of processes started by this cluster's jobs (or by one job): SLURM sets SLURM_CONF and SLURM_JOB_ID in
    every job's environment."""
    markers = [f"SLURM_CONF={conf}\0".encode()] + ([f"\0SLURM_JOB_ID={job_id}\0".encode()] if job_id else [])
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                environ = b"\0" + (entry / "environ").read_bytes()
            except OSError:
                continue
            if all(marker in environ for marker in markers):
                found.append(int(entry.name))
    return found


def wait_until(ready, cluster: Cluster, name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if ready():
                return
        except (RuntimeError, subprocess.SubprocessError):
            pass
        dead = [d for d in cluster.daemons if d.poll() is not None]
        if dead:
            raise RuntimeError(f"{Path(dead[0].args[0]).name} exited with code {dead[0].returncode} while starting "
                               f"{name}:\n{cluster.logs()}{_outs(cluster)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} was not ready in {timeout_s:.0f} s:\n{cluster.logs()}{_outs(cluster)}")
        time.sleep(0.3)


def _outs(cluster: Cluster) -> str:
    return "".join(f"--- {out.name} ---\n{out.read_text(errors='replace')[-2000:]}\n"
                   for out in sorted(cluster.folder.glob("*.out")))


def _which(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: python tests/slurm.py -- <command> [args...]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    if missing():
        print(f"error: {', '.join(missing())} not found; install the Debian packages 'slurm-wlm' and 'munge' "
              "(apt-get install slurm-wlm munge), or run `make system-packages`", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below on SIGTERM too
    folder = Path(tempfile.mkdtemp(prefix="sweeplab-slurm-"))
    cluster = None
    try:
        try:
            cluster = start(folder)
        except (OSError, subprocess.SubprocessError, RuntimeError) as error:
            print(f"error: could not start the SLURM cluster: {error}", file=sys.stderr)
            return 2
        print(f"slurm: cluster 'sweeplab', partition {cluster.partition}, node {cluster.node}, "
              f"SLURM_CONF={cluster.conf}", flush=True)
        return subprocess.run(command, env={**os.environ, **cluster.env}).returncode
    except OSError as error:
        print(f"error: cannot run {command[0]}: {error.strerror}", file=sys.stderr)
        return 127
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the cleanup
        if cluster is not None:
            stop(cluster)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
