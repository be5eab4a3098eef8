"""Optuna storages from one string: a journal file for one machine, a database URL for many."""
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from sweeplab.errors import ConfigError

JOURNAL_SUFFIXES = (".journal", ".log")
HEARTBEAT_INTERVAL_S = 10
HEARTBEAT_GRACE_S = 40


def is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith(JOURNAL_SUFFIXES)


def open_storage(url: str, failed_trial_callback=None) -> optuna.storages.BaseStorage:
    """``journal:<path>`` or ``<path>.journal`` -> journal file (safe for parallel writers on one machine);
    anything else must be an SQLAlchemy database URL (postgresql://..., sqlite:///...)."""
    if is_journal(url):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise ConfigError(
            f"hydra.sweeper.storage={url!r} is neither a database URL (postgresql://user@host/db) "
            f"nor a journal file (path ending in .journal)"
        )
    try:
        return RDBStorage(
            url,
            heartbeat_interval=HEARTBEAT_INTERVAL_S,
            grace_period=HEARTBEAT_GRACE_S,
            failed_trial_callback=failed_trial_callback,
            engine_kwargs={"pool_pre_ping": True},
        )
    except Exception as error:  # SQLAlchemy raises many kinds: bad URL, missing driver, refused connection
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"Optuna storage {_hide_password(url)} is unusable: {reason}") from None


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url
