"""Run a command next to a throw-away PostgreSQL and MLflow tracking server, both on 127.0.0.1.

    python tests/services.py -- python -m pytest

PostgreSQL gets a fresh data directory with two databases, `optuna` and `mlflow`; `mlflow server` keeps its runs
in the second and its artifacts in the temporary folder. The command sees

    SWEEPLAB_TEST_POSTGRES_URL          postgresql://postgres@127.0.0.1:<port>/optuna   (Optuna study storage)
    SWEEPLAB_TEST_MLFLOW_URL            http://127.0.0.1:<port>                         (MLflow tracking server)
    SWEEPLAB_TEST_MLFLOW_BACKEND_URL    postgresql://postgres@127.0.0.1:<port>/mlflow   (to start a second server)

Both servers are stopped and the folder removed whatever happens (tests failing, Ctrl-C, SIGTERM); the exit code
is the command's.
"""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DB_USER = "postgres"


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: python tests/services.py -- <command> [args...]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    bindir = postgres_bindir()
    if bindir is None:
        print("error: PostgreSQL server binaries (initdb, postgres) not found; install the Debian package "
              "'postgresql' (apt-get install postgresql), or run `make system-packages`", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below on SIGTERM too
    tmp = Path(tempfile.mkdtemp(prefix="sweeplab-services-"))
    servers: list[subprocess.Popen] = []
    try:
        try:
            env = start_services(bindir, tmp, servers)
        except (OSError, subprocess.SubprocessError, RuntimeError) as error:
            print(f"error: could not start the test services: {error}", file=sys.stderr)
            for log in tmp.glob("*.log"):
                print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
            return 2
        return subprocess.run(command, env=env).returncode
    except OSError as error:  # the command itself cannot be started
        print(f"error: cannot run {command[0]}: {error.strerror}", file=sys.stderr)
        return 127
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the cleanup
        for server in reversed(servers):
            stop(server)
        shutil.rmtree(tmp, ignore_errors=True)


def start_services(bindir: Path, tmp: Path, servers: list) -> dict:
    """PostgreSQL with databases `optuna` and `mlflow`, then an MLflow server on the second; the command's env."""
    pg_port, mlflow_port = free_port(), free_port()
    servers.append(start_postgres(bindir, tmp / "pgdata", pg_port))
    optuna_db, mlflow_db = (create_database(bindir, pg_port, name) for name in ("optuna", "mlflow"))
    servers.append(start_mlflow(mlflow_db, tmp / "artifacts", mlflow_port, tmp / "mlflow.log"))
    print(f"services: PostgreSQL {optuna_db}, MLflow http://127.0.0.1:{mlflow_port} (in {tmp})", flush=True)
    return dict(os.environ, SWEEPLAB_TEST_POSTGRES_URL=optuna_db, SWEEPLAB_TEST_MLFLOW_BACKEND_URL=mlflow_db,
                SWEEPLAB_TEST_MLFLOW_URL=f"http://127.0.0.1:{mlflow_port}")


def postgres_bindir() -> Path | None:
    """Debian keeps the server binaries in /usr/lib/postgresql/<version>/bin; take the newest one."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    if not found and shutil.which("initdb"):  # other distributions: on the PATH
        found = [Path(shutil.which("initdb")).parent]
    found = [d for d in found if (d / "postgres").exists() and (d / "createdb").exists()]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0) if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres(bindir: Path, data: Path, port: int) -> subprocess.Popen:
    """Initialise `data` unless it holds a database already (a restart), and start the server on 127.0.0.1:`port`.
    PostgreSQL refuses to run as root: when we are root, it runs as the `postgres` user."""
    as_user = {}
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")  # created by Debian's postgresql package
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    log = open(data.parent / "postgres.log", "a")
    if not (data / "PG_VERSION").exists():
        data.mkdir()
        if as_user:
            os.chmod(data.parent, 0o755)
            os.chown(data, as_user["user"], as_user["group"])
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", DB_USER, "--auth=trust", "-E", "UTF8"],
                       check=True, stdout=subprocess.DEVNULL, stderr=log, cwd="/", **as_user)
    server = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
         "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=200"],
        stdout=log, stderr=log, cwd="/", start_new_session=True, **as_user,
    )
    ready = [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", DB_USER]
    wait_until(lambda: subprocess.run(ready).returncode == 0, server, "PostgreSQL", 30)
    return server


def create_database(bindir: Path, port: int, name: str) -> str:
    subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", DB_USER, name], check=True)
    return f"postgresql://{DB_USER}@127.0.0.1:{port}/{name}"


def start_mlflow(backend: str, artifacts: Path, port: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),  # no GenAI job workers: 7 fewer processes
    )
    wait_until(lambda: healthy(f"http://127.0.0.1:{port}/health"), server, "mlflow server", 120)
    return server


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(ready, server: subprocess.Popen, name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if server.poll() is not None:
            raise RuntimeError(f"{name} exited with code {server.returncode} while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not become ready in {timeout_s:.0f} s")
        time.sleep(0.3)


def stop(server: subprocess.Popen) -> None:
    """SIGINT is PostgreSQL's fast shutdown and stops uvicorn cleanly; SIGKILL if that takes too long."""
    for sig, wait_s in ((signal.SIGINT, 20), (signal.SIGKILL, 10)):
        if server.poll() is not None:
            return
        try:
            os.killpg(server.pid, sig)  # the whole group: mlflow server runs its workers as children
        except ProcessLookupError:
            return
        try:
            server.wait(wait_s)
        except subprocess.TimeoutExpired:
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
