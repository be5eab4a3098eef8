"""Optuna storages from one string: a journal file for one machine, a database URL for many."""
import functools
import inspect
import itertools
import logging
import os
import random
import re
import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from sweeplab import compat
from sweeplab.errors import ConfigError, first_line
from sweeplab.sqlite_wal import use_wal

log = logging.getLogger(__name__)

JOURNAL_SUFFIXES = (".journal", ".log")
# A running trial writes a heartbeat this often; one silent for 4 intervals is FAIL (its worker died).
# SWEEPLAB_HEARTBEAT_S changes it for every process of a sweep (tests use 1 s to stay short).
HEARTBEAT_INTERVAL_S = 10
RECONNECT_PATIENCE_S = 60  # how long a database restart may take before the sweep gives up on it


def is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith(JOURNAL_SUFFIXES)


def open_storage(url: str, stale_trial_callback=None, patient: bool = False) -> optuna.storages.BaseStorage:
    """``journal:<path>`` or ``<path>.journal`` -> journal file (safe for parallel writers on one machine);
    anything else must be an SQLAlchemy database URL (postgresql://..., sqlite:///...).

    An unreachable database is an error at once, unless ``patient`` (a trial of a running sweep): then it is asked
    again for up to RECONNECT_PATIENCE_S, as every operation on the storage is."""
    if is_journal(url):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise ConfigError(
            f"hydra.sweeper.storage={url!r} is neither a database URL (postgresql://user@host/db) "
            f"nor a journal file (path ending in .journal)"
        )
    _refuse_password(url)
    use_wal(url)
    heartbeat_s = _heartbeat_interval()
    create = _patient(_create_tables_once) if patient else _create_tables_once
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5: said once here, not per process
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return create(
                url,
                heartbeat_interval=heartbeat_s,
                grace_period=4 * heartbeat_s,
                heartbeat_stale_trial_callback=stale_trial_callback,
                engine_kwargs={"pool_pre_ping": True},  # a connection the server dropped is replaced, not used
            )
    except Exception as error:  # SQLAlchemy raises many kinds: bad URL, missing driver, refused connection
        raise ConfigError(_unusable(url, error)) from None


def _create_tables_once(url: str, **kwargs) -> "PatientRDBStorage":
    """Workers started together on a new database race to create Optuna's tables (PostgreSQL: a unique violation
    in pg_type, or "relation already exists"): the losers find them made when they try again."""
    for attempt in range(3):
        try:
            return PatientRDBStorage(url, **kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == 2:
                raise
            time.sleep(0.5 + random.random())


# What a dropped connection raises, directly or as the cause of Optuna's StorageInternalError.
CONNECTION_LOST = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.PendingRollbackError)


class PatientRDBStorage(RDBStorage):
    """Optuna's database storage, whose every operation is tried again while the connection to the database is lost
    (server restarting, network blip), for up to RECONNECT_PATIENCE_S: a short outage pauses the sweep instead of
    failing the trial in progress and the worker with it. Other database errors are raised at once."""


def _patient(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        deadline = time.monotonic() + RECONNECT_PATIENCE_S
        for attempt in itertools.count():
            try:
                return method(*args, **kwargs)
            except (optuna.exceptions.StorageInternalError, *CONNECTION_LOST) as error:
                lost = isinstance(error, CONNECTION_LOST) or isinstance(error.__cause__, CONNECTION_LOST)
                if not lost or time.monotonic() > deadline:
                    raise
                if attempt == 0:
                    log.warning("Optuna storage: connection lost (%s); trying again for up to %d s",
                                first_line(error.__cause__ or error), RECONNECT_PATIENCE_S)
                time.sleep(1)

    return call


# Each public storage operation runs in a session of its own, so it can be tried again whole; so do the private ones
# that Optuna's cache layer (_CachedStorage) calls directly.
for _name in ["record_heartbeat", *compat.RDB_PRIVATE_OPERATIONS, *(n for n in vars(BaseStorage) if not n.startswith("_"))]:
    if _name != "check_trial_is_updatable" and inspect.isfunction(inspect.getattr_static(RDBStorage, _name)):
        setattr(PatientRDBStorage, _name, _patient(getattr(RDBStorage, _name)))



def _heartbeat_interval() -> int:
    value = os.environ.get("SWEEPLAB_HEARTBEAT_S", str(HEARTBEAT_INTERVAL_S))
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"SWEEPLAB_HEARTBEAT_S must be a whole number of seconds >= 1 (got {value!r})")
    return int(value)


def _refuse_password(url: str) -> None:
    """A password in the URL would be saved in every trial's config (Hydra's .hydra/, the job's config.yaml) and
    uploaded with them to MLflow, where every reader of the experiment sees it: libpq reads it from elsewhere."""
    if _url_password(url):
        raise ConfigError(
            f"hydra.sweeper.storage={_hide_password(url)} has a password in it, which every trial's saved config "
            f"would carry; remove it from the URL and give it in ~/.pgpass (or the file PGPASSFILE names), "
            f"or in PGPASSWORD"
        )


# libpq's refusals of a login, after its "connection to server at ... failed:" preamble.
LOGIN_REFUSED = re.compile(r"(password authentication failed for user \S+|no password supplied"
                           r"|permission denied for database \S+|role \S+ does not exist|database \S+ does not exist)")


def _unusable(url: str, error: Exception) -> str:
    shown = _hide_password(url)
    refused = LOGIN_REFUSED.search(str(error))
    if refused is None:
        return f"Optuna storage {shown} is unusable: {first_line(error)}"
    where = _server(url)
    reason = refused.group(1)
    if "password" in reason:
        fix = ("give the role's password in ~/.pgpass (hostname:port:database:username:password, mode 0600; or "
               "the file PGPASSFILE names) or in PGPASSWORD, never in the URL")
    else:
        fix = "ask the database's admin for a role that owns the study database, and name it in the URL"
    return f"Optuna storage {shown}: PostgreSQL at {where} refused the login ({reason}); {fix}"


def _server(url: str) -> str:
    """host:port/database of a database URL, which names the server in messages."""
    from sqlalchemy.engine import make_url

    try:
        parts = make_url(url)
    except Exception:
        return _hide_password(url)
    return f"{parts.host or 'localhost'}:{parts.port or 5432}/{parts.database or ''}"


def _url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    try:
        parts = make_url(url)
    except Exception:
        return None
    return parts.password or parts.query.get("password")


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        parts = make_url(url)
    except Exception:
        return url
    if "password" in parts.query:
        parts = parts.set(query={**parts.query, "password": "***"})
    return parts.render_as_string(hide_password=True)
