"""Where an Optuna study lives, shared by every worker that points at it.

- a URL (``postgresql://``, ``mysql://``, ``sqlite:///``): Optuna's ``RDBStorage``,
  with its heartbeats;
- anything else is a journal file path: Optuna's ``JournalStorage`` on a
  ``JournalFileBackend`` (one machine, or a file system with working file locks),
  with the heartbeats below.

Heartbeats: each running trial records a heartbeat every ``heartbeat_interval``
seconds; before a worker starts a trial it marks as failed every running trial of the
study whose heartbeat is older than ``grace_period`` seconds (its worker was killed,
or its machine lost), and enqueues that trial's configuration again (Optuna's
``RetryHeartbeatStaleTrialCallback``, at most ``MAX_RETRY`` times per configuration).
Optuna's RDBStorage has this built in; Optuna 5's JournalStorage has no heartbeat, so
:class:`HeartbeatJournalStorage` adds one through a trial system attribute.
"""
import random
import time
import warnings

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from recbole_anchor.errors import StudyStorageError

HEARTBEAT_INTERVAL = 60
GRACE_PERIOD = 180
MAX_RETRY = 3
OPEN_ATTEMPTS = 6
HEARTBEAT_ATTR = "heartbeat_time"


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's JournalStorage with RDBStorage's heartbeat protocol: the heartbeat is
    the wall-clock time (``time.time()``) in the trial's system attribute
    ``heartbeat_time``, so the workers' clocks must agree to well within the grace
    period (true on one machine)."""

    def __init__(self, backend, heartbeat_interval, grace_period, stale_trial_callback):
        super().__init__(backend)
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period
        self._stale_trial_callback = stale_trial_callback

    def record_heartbeat(self, trial_id):
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id):
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(HEARTBEAT_ATTR)
            if beat is None:  # started, no heartbeat written yet
                beat = trial.datetime_start.timestamp()
            if now - beat > self._grace_period:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self):
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        return self._stale_trial_callback


def is_url(storage):
    return "://" in storage


def open_storage(
    storage, heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=GRACE_PERIOD, progress=None
):
    """The Optuna storage for a URL or a journal file path, with heartbeats on;
    ``progress`` receives a line for each dead worker's trial this worker retries.

    Several workers may open a new database at once: RDBStorage then creates its
    tables concurrently, which can fail in all but one of them; those retry."""
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _open(storage, heartbeat_interval, grace_period, _RetryStale(progress))


class _RetryStale(RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a trial whose worker stopped, with a progress line."""

    def __init__(self, progress):
        super().__init__(max_retry=MAX_RETRY)
        self.progress = progress

    def __call__(self, study, trial):
        super().__call__(study, trial)
        if self.progress is not None:
            retried = len(trial.system_attrs.get("retry_history", [])) < MAX_RETRY
            self.progress(
                f"trial {trial.number} fail: its worker stopped sending heartbeats; "
                + ("its configuration is queued again" if retried
                   else f"not retried again (already run {MAX_RETRY + 1} times)")
            )


def _open(storage, heartbeat_interval, grace_period, retry):
    if not is_url(storage):
        try:
            backend = JournalFileBackend(storage)
        except OSError as err:
            raise StudyStorageError(f"cannot open journal file '{storage}': {err}") from None
        return HeartbeatJournalStorage(backend, heartbeat_interval, grace_period, retry)
    import sqlalchemy.exc

    storage = with_postgres_driver(storage)
    engine_kwargs = {}
    if storage.startswith("sqlite"):
        # Workers on one SQLite file wait for each other's writes instead of failing.
        engine_kwargs = {"connect_args": {"timeout": 120}}
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return RDBStorage(
                storage,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=retry,
            )
        except (sqlalchemy.exc.ArgumentError, ImportError) as err:
            raise StudyStorageError(
                f"cannot use storage '{redact(storage)}': {one_line(err)} (postgresql:// "
                "needs pip install '.[postgres]', mysql:// a MySQL driver such as pymysql)"
            ) from None
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as err:
            if attempt + 1 == OPEN_ATTEMPTS:
                raise StudyStorageError(
                    f"cannot open storage '{redact(storage)}': {one_line(err)}"
                ) from None
            time.sleep(0.5 * (attempt + 1) + random.random())


def with_postgres_driver(storage):
    """A ``postgresql://`` URL with the PostgreSQL driver that is installed: SQLAlchemy
    2.1 reads a bare ``postgresql://`` as psycopg 3, 2.0 as psycopg2; either works."""
    if not storage.startswith("postgresql://"):
        return storage
    import importlib.util

    for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{driver}://" + storage[len("postgresql://"):]
    return storage  # SQLAlchemy's own one-line ImportError, turned into StudyStorageError


def redact(storage):
    """``storage`` with any password in it replaced by ``***``."""
    if not is_url(storage):
        return storage
    try:
        from sqlalchemy.engine import make_url

        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy can read: say nothing of it
        return storage.split("://", 1)[0] + "://..."


def one_line(err):
    """``Type: first line of the message``."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"
