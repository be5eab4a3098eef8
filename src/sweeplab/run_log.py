"""One MLflow run's writes, through MlflowClient: params and tags at the start, the dataset input, metrics by
epoch, artifacts straight to the run's artifact store, the last metrics and tags with the final status."""
import functools
import hashlib
import json
import math
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from sweeplab.names import END_REASON_TAG, PARENT_TAG

CURVE_WRITE_S = 1.0  # a run's epoch metrics are written at most this often (the rest with the next write or its end)
MAX_PENDING_METRICS = 500  # MLflow takes at most 1 000 metrics in a batch: the end's batch adds its own


class RunLog:
    """One MLflow run: params and tags at the start, metrics by epoch, artifacts and a final status."""

    def __init__(self, client: MlflowClient, run_id: str, artifact_uri: str | None = None):
        self.client = client
        self.run_id = run_id
        self._artifact_uri = artifact_uri  # the run's as created (else read back once, when first needed)
        self._in_flight = None  # the last metrics batch, written by MLflow's async logging thread
        self._pending: list[Metric] = []  # epochs' metrics not written yet (see metrics)
        self._written = -math.inf  # time.monotonic() of the last metrics write
        # A server takes writes from many clients at once; an SQLite file has one writer, and a background thread
        # writing to it makes the job's own writes wait for its lock (about a second per trial, measured).
        self._asynchronous = urlparse(client.tracking_uri).scheme in ("http", "https")

    @classmethod
    def start(cls, client, experiment_id, run_name, params: dict, tags: dict, parent_run_id=None) -> "RunLog":
        tags = {k: str(v) for k, v in tags.items() if v is not None}
        if parent_run_id:
            tags[PARENT_TAG] = parent_run_id
        run = client.create_run(experiment_id, run_name=run_name, tags=tags)
        log = cls(client, run.info.run_id, run.info.artifact_uri)
        try:
            log.client.log_batch(log.run_id, params=[Param(k, v) for k, v in params.items()])
        except Exception:
            log.end(RunStatus.FAILED, "could not log params")
            raise
        return log

    def dataset(self, name: str, data, source: str, data_dir: Path) -> None:
        """The training data as an MLflow dataset input (the runs table's Dataset column): name, digest, source.
        MLflow stores the dataset once per experiment (by name and digest); each run links to it."""
        inputs = [DatasetInput(_dataset(name, data, source, data_dir), [InputTag("mlflow.data.context", "train")])]
        try:
            self.client.log_inputs(self.run_id, inputs)
        except MlflowException as error:
            # MLflow looks the dataset up, then inserts it: two trials that start together both insert, and the
            # loser hits the table's unique key. Once more, it finds the winner's row and links the run to it.
            if not re.search(r"UNIQUE constraint|duplicate key|IntegrityError", str(error)):
                raise
            self.client.log_inputs(self.run_id, inputs)

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        """An epoch's metrics, stamped now. They are written at once when the run's last write is CURVE_WRITE_S old
        (the first epoch's always), else with the next write or the run's end: a population's K members write their
        curves in one round a second, not K writes an epoch. Killed outright, a run loses at most that second.

        On a tracking server, written while the job goes on (MLflow's asynchronous logging): one batch at a time is
        in flight, and ``end`` waits for it. On a database store, written at once."""
        self._pending += _metrics(values, step or 0)
        if time.monotonic() - self._written >= CURVE_WRITE_S or len(self._pending) >= MAX_PENDING_METRICS:
            self.flush()

    def flush(self) -> None:
        """Write the metrics held back."""
        self.wait()
        pending, self._pending = self._pending, []
        if pending:
            self._in_flight = self.client.log_batch(self.run_id, metrics=pending, synchronous=not self._asynchronous)
        self._written = time.monotonic()

    def wait(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.wait()  # raises the batch's MlflowException, if any

    @functools.cached_property
    def _artifacts(self):
        """The run's artifact store. MlflowClient.log_artifact reads the whole run back (params, metrics, tags) to
        find it: the largest part of a short trial's artifact logging."""
        uri = self._artifact_uri or self.client.get_run(self.run_id).info.artifact_uri
        return get_artifact_repository(uri, tracking_uri=self.client.tracking_uri)

    def artifact(self, path: Path, folder: str | None = None) -> None:
        if path.is_dir():
            self._artifacts.log_artifacts(str(path), folder)
        elif path.exists():
            self._artifacts.log_artifact(str(path), folder)

    def text(self, content: str, file_name: str) -> None:
        """``content`` as the artifact ``file_name`` (MlflowClient.log_text, through the run's own store)."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / file_name
            path.write_text(content, encoding="utf-8")
            self.artifact(path)

    def end(self, status=RunStatus.FINISHED, reason: str | None = None, metrics: dict[str, float] | None = None,
            tags: dict | None = None, epochs: dict | None = None) -> None:
        """The run's last ``metrics``, ``epochs`` ({epoch: metrics}, each at its step) and ``tags`` (the end
        ``reason`` among them) in one batch, then its status."""
        try:
            self.wait()
        except MlflowException:
            if status == "FINISHED":
                raise  # the job fails, and its run ends FAILED
        tags = {**(tags or {}), **({END_REASON_TAG: reason[:5000]} if reason else {})}
        last = self._pending + _metrics(metrics or {}, 0) + [
            m for epoch, named in (epochs or {}).items() for m in _metrics(named, epoch)]
        self._pending = []
        if last or tags:
            self.client.log_batch(self.run_id, metrics=last, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        self.client.set_terminated(self.run_id, RunStatus.to_string(status) if isinstance(status, int) else status)


def _metrics(values: dict[str, float], step: int) -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, step) for k, v in values.items()]


def _dataset(name: str, data, source: str, data_dir: Path) -> Dataset:
    """The dataset entity of a job's data; the jobs of one process that share their data (see
    sweeplab.data.loading.load_data) share it too, so its digest is computed once."""
    if _last_dataset.get("of") is not data or _last_dataset.get("key") != (name, source, data_dir):
        profile = json.dumps({"train": len(data.train[1]), "test": len(data.test[1]), "classes": data.num_classes,
                              "input_shape": list(data.input_shape)})
        dataset = Dataset(name, dataset_digest(data), "sweeplab", f"{source} in {data_dir}", profile=profile)
        _last_dataset.update(of=data, key=(name, source, data_dir), dataset=dataset)
    return _last_dataset["dataset"]


_last_dataset: dict = {}


def dataset_digest(data) -> str:
    """A short fingerprint of the splits: their shapes and labels, and a strided sample of the inputs (hashing every
    pixel of a large dataset would cost more than the job's start-up)."""
    digest = hashlib.sha256()
    for inputs, labels in (data.train, data.test):
        digest.update(repr((tuple(inputs.shape), str(inputs.dtype))).encode())
        digest.update(labels.cpu().numpy().tobytes())
        step = max(1, len(inputs) // 64)
        digest.update(inputs[::step].contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]
