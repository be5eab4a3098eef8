"""SQLite stores (MLflow's mlflow.db, an Optuna sqlite:/// storage) in write-ahead-log mode.

In SQLite's default rollback-journal mode every commit syncs the database and its journal to disk several times; a
trial commits about seven times. In WAL mode with synchronous=NORMAL a commit appends to `<db>-wal` without waiting
for the disk (the WAL is synced when it is copied back into the database), readers no longer block the writer, and
a crash of the process loses nothing committed; only an OS crash or power loss may lose the last commits. WAL mode is
kept in the database file (every later connection, `mlflow ui` too, uses it), synchronous is set per connection.

WAL needs every process that opens the database on one machine (shared memory in `<db>-shm`): a database on a
network file system is left in its journal mode."""
import atexit
import contextlib
import os
import sqlite3
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

NETWORK_FILE_SYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "fuse.sshfs",
                        "glusterfs", "fuse.glusterfs", "afs", "9p")
_databases: set[str] = set()  # real paths of the database files this process puts in WAL mode


def use_wal(url: str) -> None:
    """From now on, each connection this process opens to the SQLite database of ``url`` (sqlite:///path) runs in
    WAL mode with synchronous=NORMAL. Other URLs, in-memory databases and files on network file systems are left
    alone."""
    try:
        parts = make_url(url)
    except Exception:
        return
    if parts.get_backend_name() != "sqlite" or parts.database in (None, "", ":memory:"):
        return
    path = os.path.realpath(parts.database)
    if path in _databases or _on_network_file_system(path):
        return
    if not _databases:
        event.listen(Engine, "connect", _on_connect)
        atexit.register(_checkpoint)
    _databases.add(path)


def _on_connect(dbapi_connection, _connection_record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    files = [row[2] for row in dbapi_connection.execute("PRAGMA database_list") if row[1] == "main"]
    if not files or os.path.realpath(files[0]) not in _databases:
        return
    try:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.OperationalError:
        pass  # another process held the database locked too long to switch: this connection keeps the file's mode


def _checkpoint() -> None:
    """At exit, copy the WAL's commits into the database file and empty the WAL: a copy of the database file alone
    then holds every run (SQLite would do this itself when the last connection closes, and MLflow keeps its open)."""
    for path in _databases:
        if not os.path.exists(f"{path}-wal"):
            continue  # never opened (e.g. the job stopped at bad input): no database to create here
        try:
            connection = sqlite3.connect(Path(path).as_uri() + "?mode=rw", uri=True, timeout=1.0)
            with contextlib.closing(connection):
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass  # another process is writing: its own exit (or the next opener) copies the WAL back


def _on_network_file_system(path: str) -> bool:
    """Whether the folder of ``path`` lies on a network file system (Linux: /proc/self/mounts; elsewhere: no)."""
    try:
        with open("/proc/self/mounts") as mounts:
            entries = [line.split()[1:3] for line in mounts]
    except OSError:
        return False
    folder = os.path.dirname(path)
    matches = [(point, kind) for point, kind in entries
               if folder == point or folder.startswith(point.rstrip("/") + "/")]
    if not matches:
        return False
    _, kind = max(matches, key=lambda match: len(match[0]))
    return kind in NETWORK_FILE_SYSTEMS or kind.startswith("nfs")
