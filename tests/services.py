"""Run a command next to a throw-away PostgreSQL and MLflow tracking server, both on 127.0.0.1, both asking who is
calling, set up as docs/scaling-out.md sets them up.

    python tests/services.py -- python -m pytest

PostgreSQL gets a fresh data directory that accepts only password logins (scram-sha-256) and two databases:
`optuna`, owned by the role `sweeplab`, and `mlflow`, owned by the role `mlflow`, each closed to the other role.
`mlflow server --app-name basic-auth` keeps its runs and its users in the second, its artifacts in the temporary
folder; besides its admin it has one user for the sweeps. No password is in a URL or on a command line. The command
sees

    SWEEPLAB_TEST_POSTGRES_URL          postgresql://sweeplab@127.0.0.1:<port>/optuna   (Optuna study storage)
    SWEEPLAB_TEST_MLFLOW_URL            http://127.0.0.1:<port>                         (MLflow tracking server)
    SWEEPLAB_TEST_MLFLOW_BACKEND_URL    postgresql://mlflow@127.0.0.1:<port>/mlflow     (to start a second server)
    PGPASSFILE                          a pgpass file with the passwords of the roles `sweeplab` and `mlflow`
    SWEEPLAB_TEST_MLFLOW_USERNAME / _PASSWORD               the sweeps' MLflow user (workers get them as
                                                            MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)
    SWEEPLAB_TEST_MLFLOW_ADMIN_USERNAME / _PASSWORD         the MLflow server's admin (to add users)
    SWEEPLAB_TEST_POSTGRES_ADMIN_PASSWORD, SWEEPLAB_TEST_MLFLOW_SECRET_KEY   for the helpers below, used by tests

Both servers are stopped and the folder removed whatever happens (tests failing, Ctrl-C, SIGTERM); the exit code
is the command's.
"""
import glob
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
import urllib.request
from pathlib import Path

DB_SUPERUSER = "postgres"
STUDY_ROLE = "sweeplab"  # owns the study databases, nothing else
MLFLOW_ROLE = "mlflow"  # the MLflow server's: its runs and its users
MLFLOW_ADMIN = "admin"
MLFLOW_USER = "sweeper"  # what the workers log in as


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
    os.environ.update(new_secrets(tmp))  # the helpers below read them from there, here and in the tests
    pg_port, mlflow_port = free_port(), free_port()
    servers.append(start_postgres(bindir, tmp / "pgdata", pg_port))
    optuna_db = create_database(bindir, pg_port, "optuna")
    mlflow_db = create_database(bindir, pg_port, "mlflow", owner=MLFLOW_ROLE)
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    servers.append(start_mlflow(mlflow_db, tmp / "artifacts", mlflow_port, tmp / "mlflow.log"))
    add_mlflow_user(mlflow_url, MLFLOW_USER, os.environ["SWEEPLAB_TEST_MLFLOW_PASSWORD"])
    print(f"services: PostgreSQL {optuna_db}, MLflow {mlflow_url} (basic-auth), in {tmp}", flush=True)
    return dict(os.environ, SWEEPLAB_TEST_POSTGRES_URL=optuna_db, SWEEPLAB_TEST_MLFLOW_BACKEND_URL=mlflow_db,
                SWEEPLAB_TEST_MLFLOW_URL=mlflow_url)


def new_secrets(tmp: Path) -> dict[str, str]:
    """Fresh passwords for this run: the database roles' in a pgpass file (libpq, and so psycopg, reads it), the
    rest in variables. Never in argv, where `ps` shows them to every user of the machine."""
    study, mlflow_role = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    pgpass = tmp / "pgpass"
    pgpass.write_text(f"127.0.0.1:*:*:{STUDY_ROLE}:{study}\n127.0.0.1:*:*:{MLFLOW_ROLE}:{mlflow_role}\n")
    pgpass.chmod(0o600)  # libpq ignores a pgpass file that others may read
    return {
        "PGPASSFILE": str(pgpass),
        "SWEEPLAB_TEST_POSTGRES_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "SWEEPLAB_TEST_MLFLOW_ADMIN_USERNAME": MLFLOW_ADMIN,
        "SWEEPLAB_TEST_MLFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "SWEEPLAB_TEST_MLFLOW_USERNAME": MLFLOW_USER,
        "SWEEPLAB_TEST_MLFLOW_PASSWORD": secrets.token_urlsafe(18),
        "SWEEPLAB_TEST_MLFLOW_SECRET_KEY": secrets.token_hex(16),  # one for every server on the same backend
    }


def pgpass_password(role: str) -> str:
    """A database role's password, from the pgpass file of this run."""
    for line in Path(os.environ["PGPASSFILE"]).read_text().splitlines():
        *_, user, password = line.split(":", 4)
        if user == role:
            return password
    raise KeyError(f"no password for role {role!r} in {os.environ['PGPASSFILE']}")


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
    Every login needs a password (scram-sha-256); the superuser's is SWEEPLAB_TEST_POSTGRES_ADMIN_PASSWORD.
    PostgreSQL refuses to run as root: when we are root, it runs as the `postgres` user."""
    as_user = {}
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")  # created by Debian's postgresql package
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    log = open(data.parent / "postgres.log", "a")
    if not (data / "PG_VERSION").exists():
        data.mkdir()
        pwfile = data.parent / "superuser.pw"  # read by initdb, removed at once
        pwfile.touch(0o600)
        pwfile.write_text(os.environ["SWEEPLAB_TEST_POSTGRES_ADMIN_PASSWORD"])
        if as_user:
            os.chmod(data.parent, 0o755)
            os.chown(data, as_user["user"], as_user["group"])
            os.chown(pwfile, as_user["user"], as_user["group"])
        try:
            subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", DB_SUPERUSER, "--auth=scram-sha-256",
                            f"--pwfile={pwfile}", "-E", "UTF8"],
                           check=True, stdout=subprocess.DEVNULL, stderr=log, cwd="/", **as_user)
        finally:
            pwfile.unlink()
    server = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
         "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=200"],
        stdout=log, stderr=log, cwd="/", start_new_session=True, **as_user,
    )
    ready = [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", DB_SUPERUSER]
    wait_until(lambda: subprocess.run(ready).returncode == 0, server, "PostgreSQL", 30)
    return server


def create_database(bindir: Path, port: int, name: str, owner: str = STUDY_ROLE) -> str:
    """Database `name` owned by `owner` (a login role, made with its pgpass password if missing) and closed to every
    other role; its URL, with no password in it."""
    password = pgpass_password(owner)
    sql = (f"SELECT 'CREATE ROLE {owner} LOGIN PASSWORD ''{password}''' "
           f"WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') \\gexec\n"
           f"CREATE DATABASE {name} OWNER {owner};\n"
           f"REVOKE ALL ON DATABASE {name} FROM PUBLIC;\n")
    subprocess.run([str(bindir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
                    "-U", DB_SUPERUSER, "-d", "postgres", "-f", "-"], input=sql, text=True, check=True,
                   stdout=subprocess.DEVNULL, env=dict(os.environ, PGPASSWORD=os.environ[
                       "SWEEPLAB_TEST_POSTGRES_ADMIN_PASSWORD"]))
    return f"postgresql://{owner}@127.0.0.1:{port}/{name}"


def start_mlflow(backend: str, artifacts: Path, port: int, log_path: Path) -> subprocess.Popen:
    """`mlflow server --app-name basic-auth`, its users in `backend` too (a second server on the same database knows
    them); the admin is made on first start with SWEEPLAB_TEST_MLFLOW_ADMIN_PASSWORD. Users read every experiment
    (default_permission = READ) and write only to those they made or were granted EDIT on."""
    auth_config = log_path.with_suffix(".auth.ini")
    auth_config.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = {backend}\n"
                           f"admin_username = {os.environ['SWEEPLAB_TEST_MLFLOW_ADMIN_USERNAME']}\n"
                           f"authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                           # A password check is a deliberately slow hash (scrypt): on every request of a sweep
                           # it costs more than the logging. Password changes through the API apply at once.
                           f"auth_cache_ttl_seconds = 60\n")
    log = open(log_path, "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--backend-store-uri", backend,
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(
            os.environ,
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",  # no GenAI job workers: 7 fewer processes
            MLFLOW_AUTH_CONFIG_PATH=str(auth_config),
            MLFLOW_AUTH_ADMIN_PASSWORD=os.environ["SWEEPLAB_TEST_MLFLOW_ADMIN_PASSWORD"],
            MLFLOW_FLASK_SERVER_SECRET_KEY=os.environ["SWEEPLAB_TEST_MLFLOW_SECRET_KEY"],
        ),
    )
    wait_until(lambda: healthy(f"http://127.0.0.1:{port}/health"), server, "mlflow server", 120)
    return server


def add_mlflow_user(tracking_uri: str, username: str, password: str) -> None:
    """A new user of the MLflow server, made by its admin."""
    admin_client(tracking_uri).create_user(username, password)


def admin_client(tracking_uri: str):
    """The basic-auth app's client, logged in as the admin (its credentials set on the requests it sends only)."""
    from mlflow.server.auth.client import AuthServiceClient
    from mlflow.utils.rest_utils import MlflowHostCreds, http_request, verify_rest_response

    class AdminClient(AuthServiceClient):
        def _request(self, endpoint, method, *, expected_status: int = 200, **kwargs):
            creds = MlflowHostCreds(self.tracking_uri, username=os.environ["SWEEPLAB_TEST_MLFLOW_ADMIN_USERNAME"],
                                    password=os.environ["SWEEPLAB_TEST_MLFLOW_ADMIN_PASSWORD"])
            response = verify_rest_response(http_request(creds, endpoint, method, **kwargs), endpoint,
                                            expected_status=expected_status)
            return response.json() if response.status_code != 204 and response.content else {}

    return AdminClient(tracking_uri)


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
