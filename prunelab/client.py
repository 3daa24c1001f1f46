"""`Client`: PruneLab's HTTP API from Python (runs, metrics, downloads, compare, uploads).

    from prunelab import Client

    client = Client("http://127.0.0.1:8000")  # or PRUNELAB_URL / PRUNELAB_TOKEN
    run = client.create_run({"dataset": "digits", "model": "mlp", "epochs": 1})
    run = client.wait(run.id, progress=True)
    client.download(run.id, "tflite_int8", "model.tflite")

Every failure is a `PruneLabError` carrying the server's message and HTTP status; nothing raises httpx errors.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal

import httpx
from httpx_sse import EventSource
from pydantic import BaseModel

from prunelab._http import Http
from prunelab.downloads import DOWNLOAD_FORMATS, download_to, stream_to
from prunelab.errors import PruneLabError, ServerUnreachable, WaitTimeout
from prunelab.models import Download, GroupComparison, Run, Series, Sweep, Upload
from prunelab.progress import RunProgress

if TYPE_CHECKING:
    import pandas

DEFAULT_URL = "http://127.0.0.1:8000"
RunRef = int | Run  # wherever a run is named, its id or the run itself
PAGE_SIZE = 200
# The server sends a keep-alive comment every 15 s, so a silent stream this long is a dead one.
STREAM_READ_TIMEOUT_S = 45.0
RECONNECTS = 8


def run_ref(run: RunRef) -> int:
    """The id of a run given by id or as a `Run`."""
    return run.id if isinstance(run, Run) else int(run)


class Client:
    """A PruneLab server's API.

    `url` defaults to PRUNELAB_URL (else http://127.0.0.1:8000) and `token` to PRUNELAB_TOKEN: a user's API
    token (`prunelab tokens create NAME`) or the server's service token, sent as `Authorization: Bearer`.
    Use it as a context manager, or call `close()`, to release its connections.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("PRUNELAB_URL") or DEFAULT_URL).rstrip("/")
        self._http = Http(self.url, token or os.environ.get("PRUNELAB_TOKEN") or None, timeout, transport)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def health(self) -> dict[str, Any]:
        """The server's `/api/health` answer (raises `ServerUnreachable` when nothing answers)."""
        return dict(self._http.json("GET", "/api/health"))

    # Runs

    def create_run(self, spec: Mapping[str, Any] | BaseModel) -> Run:
        """Submit a run from a spec dict (README's JSON) or `core.specs.RunSpec`; the server validates it."""
        body = spec.model_dump(mode="json") if isinstance(spec, BaseModel) else dict(spec)
        return Run.model_validate(self._http.json("POST", "/api/runs", json=body))

    def iter_runs(
        self,
        filter: str | None = None,  # noqa: A002
        *,
        sort: str | None = None,
        order: Literal["asc", "desc"] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[Run]:
        """Every run the server lists (newest first unless `sort`/`order` say otherwise), page by page.

        `filter` is the server's filter string (e.g. `accuracy > 0.98 kind:polynomial tag:sweep`), `sort` a
        column or metric key. A server that pages with a cursor answers `{"runs": [...], "next_cursor": ...}`
        and the cursor is followed; an older one answers a plain list, paged with `offset`, and cannot filter.
        """
        params: dict[str, Any] = {"limit": page_size}
        for name, value in (("filter", filter), ("sort", sort), ("order", order)):
            if value:
                params[name] = value
        offset = 0
        while True:
            page = self._http.json("GET", "/api/runs", params=params)
            if isinstance(page, dict):
                items: list[Any] = page.get("runs") or []
                yield from (Run.model_validate(item) for item in items)
                cursor = page.get("next_cursor")
                if not cursor or not items:
                    return
                params["cursor"] = cursor
            else:
                if filter or sort or order:
                    raise PruneLabError(
                        f"the server at {self.url} predates filtering and sorting runs: upgrade it, or list all runs"
                    )
                yield from (Run.model_validate(item) for item in page)
                if len(page) < page_size:
                    return
                offset += len(page)
                params["offset"] = offset

    def list_runs(
        self,
        filter: str | None = None,  # noqa: A002
        *,
        sort: str | None = None,
        order: Literal["asc", "desc"] | None = None,
        limit: int | None = None,
    ) -> list[Run]:
        """Runs (at most `limit`), newest first unless `sort`/`order` say otherwise; see `iter_runs`."""
        runs: list[Run] = []
        page_size = min(PAGE_SIZE, limit or PAGE_SIZE)
        for run in self.iter_runs(filter, sort=sort, order=order, page_size=page_size):
            runs.append(run)
            if limit is not None and len(runs) >= limit:
                break
        return runs

    def get_run(self, run_id: RunRef) -> Run:
        """One run: spec, plan, status, latest values, summary, artifacts."""
        return Run.model_validate(self._http.json("GET", f"/api/runs/{run_ref(run_id)}"))

    def workers(self) -> dict[str, Any]:
        """Workers seen in the last day (`state` online, gone or stopped; `running`: their run ids) and the queue."""
        workers: dict[str, Any] = self._http.json("GET", "/api/workers")
        return workers

    def cancel(self, run_id: RunRef) -> Run:
        """Cancel a run: a queued run never starts, a running one stops within a few steps."""
        return Run.model_validate(self._http.json("POST", f"/api/runs/{run_ref(run_id)}/cancel"))

    def delete(self, run_id: RunRef) -> None:
        """Delete a finished or queued run with its metrics and files."""
        self._http.request("DELETE", f"/api/runs/{run_ref(run_id)}")

    def update(self, run_id: RunRef, *, tags: Sequence[str] | None = None, note: str | None = None) -> Run:
        """Replace a run's tags and/or note (None leaves it as it is)."""
        patch: dict[str, Any] = {}
        if tags is not None:
            patch["tags"] = list(tags)
        if note is not None:
            patch["note"] = note
        return Run.model_validate(self._http.json("PATCH", f"/api/runs/{run_ref(run_id)}", json=patch))

    def add_tags(self, run_id: RunRef, *tags: str) -> Run:
        """Add tags to a run (those it has stay)."""
        current = self.get_run(run_id).tags
        return self.update(run_id, tags=list(dict.fromkeys([*current, *tags])))

    def remove_tags(self, run_id: RunRef, *tags: str) -> Run:
        """Remove tags from a run."""
        current = self.get_run(run_id).tags
        return self.update(run_id, tags=[tag for tag in current if tag not in tags])

    def events(
        self, run_id: RunRef, after_step: int = 0, *, timeout: float | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The run's live events (`metrics`, `status`, `end`) from its Server-Sent Events stream, until `end`.

        A dropped stream is opened again from the last step seen (series logged less often than every step,
        such as validation, may then skip a point). Raises `WaitTimeout` after `timeout` seconds.
        """
        run_id = run_ref(run_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        step, failures = after_step, 0
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(f"run {run_id} did not finish within {timeout:g} s")
            read_s = STREAM_READ_TIMEOUT_S if remaining is None else min(STREAM_READ_TIMEOUT_S, remaining + 0.1)
            try:
                with self._http.stream(
                    "GET",
                    f"/api/runs/{run_id}/events",
                    params={"after_step": step},
                    timeout=httpx.Timeout(self._http.client.timeout.connect, read=read_s),
                ) as response:
                    for message in EventSource(response).iter_sse():
                        if message.event not in ("metrics", "status", "end"):
                            continue
                        failures = 0
                        data = json.loads(message.data)
                        if message.event == "metrics":
                            step = max([step, *(series["steps"][-1] for series in data.values() if series["steps"])])
                        yield message.event, data
                        if message.event == "end":
                            return
                        if deadline is not None and time.monotonic() >= deadline:
                            raise WaitTimeout(f"run {run_id} did not finish within {timeout:g} s")
                lost: PruneLabError = ServerUnreachable(f"the event stream of run {run_id} kept closing")
            except ServerUnreachable as error:
                lost = error
            # The stream broke or closed before `end` (a restarted server): open it again, a few times.
            failures += 1
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"run {run_id} did not finish within {timeout:g} s") from None
            if failures > RECONNECTS:
                raise lost
            time.sleep(min(2.0**failures / 4, 5.0))

    def wait(self, run_id: RunRef, timeout: float | None = None, *, progress: bool | None = None) -> Run:
        """Follow a run until it succeeds, fails or is cancelled, and return it as it ended.

        `progress` draws a bar of steps with the latest sparsity and accuracy (default: when stderr is a
        terminal). Raises `WaitTimeout` after `timeout` seconds; a failed run is returned, not raised.
        """
        run = self.get_run(run_id)
        with RunProgress(run, enabled=progress) as bar:
            for event, data in self.events(run_id, timeout=timeout):
                bar.event(event, data)
            run = self.get_run(run_id)
            bar.status(run)  # the run as it ended, with its last stored step
        return run

    # Sweeps

    def submit_sweep(self, sweep: Mapping[str, Any] | BaseModel) -> Sweep:
        """Submit a sweep (base, variants, axes, seeds); every point is checked before any run is queued."""
        body = sweep.model_dump(mode="json") if isinstance(sweep, BaseModel) else dict(sweep)
        return Sweep.model_validate(self._http.json("POST", "/api/sweeps", json=body))

    def sweep(self, sweep_id: int) -> Sweep:
        """A sweep with its progress, points and runs."""
        return Sweep.model_validate(self._http.json("GET", f"/api/sweeps/{int(sweep_id)}"))

    def list_sweeps(self, limit: int = 100) -> list[Sweep]:
        """The newest sweeps first, each with its progress (no points or runs)."""
        page = self._http.json("GET", "/api/sweeps", params={"limit": limit})
        return [Sweep.model_validate(item) for item in page["sweeps"]]

    def cancel_sweep(self, sweep_id: int) -> Sweep:
        """Cancel a sweep: queued runs never start, running ones stop, finished ones stay."""
        return Sweep.model_validate(self._http.json("POST", f"/api/sweeps/{int(sweep_id)}/cancel"))

    def retry_sweep(self, sweep_id: int) -> Sweep:
        """Run every failed point of a sweep again."""
        return Sweep.model_validate(self._http.json("POST", f"/api/sweeps/{int(sweep_id)}/retry"))

    def wait_sweep(self, sweep_id: int, timeout: float | None = None, *, poll_s: float = 2.0) -> Sweep:
        """Poll a sweep until no point is queued or running, and return it; `WaitTimeout` after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            sweep = self.sweep(sweep_id)
            if sweep.finished:
                return sweep
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimeout(f"sweep {sweep_id} still running after {timeout} s")
            time.sleep(poll_s)

    def write_sweep_report(self, sweep_id: int, path: str | os.PathLike[str], *, metric: str = "test_accuracy") -> Path:
        """Write a sweep's report as one self-contained HTML file: the frontier, the group table (every axis but
        the seed), the Welch comparisons of `metric`, banded curves, the sweep's spec and each point's run."""
        target = Path(path)
        params = {"sweep": int(sweep_id), "metric": metric}
        with self._http.stream("GET", "/api/compare/report", params=params) as response:
            stream_to(response, target)
        return target

    def sweep_url(self, sweep_id: int) -> str:
        """The sweep's page on the dashboard."""
        return f"{self.url}/sweep.html?id={int(sweep_id)}"

    # Metrics

    def metric_keys(self, run_id: RunRef) -> dict[str, int]:
        """The keys a run has logged, each with its last step."""
        rows = self._http.json("GET", f"/api/runs/{run_ref(run_id)}/metric-keys")
        return {row["key"]: row["last_step"] for row in rows}

    def metrics(
        self,
        run_id: RunRef,
        keys: Iterable[str] | None = None,
        *,
        max_points: int | None = None,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> dict[str, Series]:
        """A run's series as dicts of parallel lists (`steps`, `values`, `wall_times`), every point by default.

        `max_points` downsamples on the server (first, last, minimum and maximum kept); `start_step` and
        `end_step` read a window.
        """
        params: dict[str, Any] = {}
        if keys is not None:
            params["keys"] = ",".join(keys)
        for name, value in (("max_points", max_points), ("start_step", start_step), ("end_step", end_step)):
            if value is not None:
                params[name] = value
        body = self._http.json("GET", f"/api/runs/{run_ref(run_id)}/metrics", params=params)
        return dict(body["series"])

    def metrics_frame(self, run_id: RunRef) -> pandas.DataFrame:
        """A run's full history as a pandas DataFrame (key, step, value, wall_time; NaN where not finite).

        Needs pandas (`pip install 'prunelab[pandas]'`).
        """
        try:
            import pandas
        except ImportError:
            raise PruneLabError("metrics_frame needs pandas: pip install 'prunelab[pandas]'") from None
        buffer = io.BytesIO()
        with self._http.stream("GET", f"/api/runs/{run_ref(run_id)}/metrics.csv") as response:
            for chunk in response.iter_bytes():
                buffer.write(chunk)
        buffer.seek(0)
        return pandas.read_csv(buffer, dtype={"key": "string", "step": "int64", "value": "float64"})

    def export_metrics(
        self,
        run_id: RunRef,
        path: str | os.PathLike[str],
        format: Literal["csv", "parquet"] = "csv",  # noqa: A002
    ) -> Path:
        """Write a run's full metric history to `path` as CSV or Parquet, streamed."""
        if format not in ("csv", "parquet"):
            raise PruneLabError(f"format must be csv or parquet, not {format!r}")
        target = Path(path)
        with self._http.stream("GET", f"/api/runs/{run_ref(run_id)}/metrics.{format}") as response:
            stream_to(response, target)
        return target

    # Downloads

    def download(
        self,
        run_id: RunRef,
        format: str = "keras",  # noqa: A002
        path: str | os.PathLike[str] | None = None,
        *,
        progress: bool | None = None,
    ) -> Download:
        """Download one of a run's files (a model format from core/exports.py, `manifest` or `rewind`).

        `path` is a file or a folder (default: the current folder, under the server's file name). The bytes go
        to `<path>.part` first: a download that was cut resumes from there with `Range`/`If-Range`, and the
        file gets its name only once its sha256 equals the one in the run's artifacts (else `ChecksumMismatch`,
        and the partial file is removed).
        """
        if format not in DOWNLOAD_FORMATS:
            raise PruneLabError(f"unknown format {format!r}; choose from: {', '.join(DOWNLOAD_FORMATS)}")
        run = self.get_run(run_id)
        return download_to(self._http, run, format, None if path is None else Path(path), progress)

    # Compare

    def compare(
        self,
        run_ids: Sequence[RunRef],
        *,
        keys: Iterable[str] | None = None,
        max_points: int | None = None,
        baseline: int | None = None,
    ) -> dict[str, Any]:
        """Runs side by side (`GET /api/compare`): runs, differing parameters, Pareto ids, planned and logged series."""
        params: dict[str, Any] = {"runs": ",".join(str(run_ref(run_id)) for run_id in run_ids)}
        if keys is not None:
            params["keys"] = ",".join(keys)
        if max_points is not None:
            params["max_points"] = max_points
        if baseline is not None:
            params["baseline"] = baseline
        return dict(self._http.json("GET", "/api/compare", params=params))

    def write_report(
        self,
        run_ids: Sequence[RunRef],
        path: str | os.PathLike[str],
        *,
        baseline: int | None = None,
        by: Sequence[str] | None = None,
        metric: str = "test_accuracy",
    ) -> Path:
        """Write the comparison as one self-contained HTML file (it opens without a network); with `by`, grouped:
        the group table, Welch comparisons of `metric`, the frontier and banded curves too."""
        params: dict[str, Any] = {"runs": ",".join(str(run_ref(run_id)) for run_id in run_ids)}
        if baseline is not None:
            params["baseline"] = baseline
        if by:
            params |= {"by": ",".join(by), "metric": metric}
        target = Path(path)
        with self._http.stream("GET", "/api/compare/report", params=params) as response:
            stream_to(response, target)
        return target

    # Groups

    def groups(
        self,
        by: Sequence[str],
        *,
        metrics: Iterable[str] = ("test_accuracy",),
        filter: str = "",  # noqa: A002
    ) -> pandas.DataFrame:
        """Runs grouped by spec fields or tags (`GET /api/groups`), one row per group: the `by` fields, `n`
        (succeeded runs), `failed`, `pending`, then `<metric>_n`, `_mean`, `_std` (ddof=1), `_min`, `_max` per
        metric, `label` and `run_ids`. Needs pandas (`pip install 'prunelab[pandas]'`)."""
        try:
            import pandas
        except ImportError:
            raise PruneLabError("groups needs pandas: pip install 'prunelab[pandas]'") from None
        body = self.group_table(by, metrics=metrics, filter=filter)
        rows = []
        for group in body["groups"]:
            row: dict[str, Any] = dict(group["key"])
            row |= {"n": len(group["run_ids"]), "failed": len(group["failed_run_ids"])}
            row["pending"] = len(group["pending_run_ids"])
            for metric, summary in group["metrics"].items():
                row |= {f"{metric}_{name}": value for name, value in summary.items()}
            rows.append(row | {"label": group["label"], "run_ids": group["run_ids"]})
        columns = [*body["by"], "n", "failed", "pending"]
        columns += [f"{metric}_{name}" for metric in body["metrics"] for name in ("n", "mean", "std", "min", "max")]
        return pandas.DataFrame(rows, columns=[*columns, "label", "run_ids"])

    def group_table(
        self,
        by: Sequence[str],
        *,
        metrics: Iterable[str] = ("test_accuracy",),
        filter: str = "",  # noqa: A002
    ) -> dict[str, Any]:
        """`GET /api/groups` as the server answers it (no pandas needed): `by`, `metrics` and `groups`, each
        with its `key`, `label`, run ids and per-metric n, mean, std, min and max."""
        params = {"by": ",".join(by), "metrics": ",".join(metrics), "filter": filter}
        return self._http.json("GET", "/api/groups", params=params)  # type: ignore[no-any-return]

    def compare_groups(
        self,
        by: Sequence[str],
        a: str,
        b: str,
        *,
        metric: str = "test_accuracy",
        filter: str = "",  # noqa: A002
    ) -> GroupComparison:
        """Group `a` minus group `b` (labels as `groups()` gives them, e.g. "schedule.kind=polynomial") on a final
        metric: difference of means, Welch's 95% interval, p-value, n per side and a sentence saying it."""
        params = {"by": ",".join(by), "a": a, "b": b, "metric": metric, "filter": filter}
        return GroupComparison.model_validate(self._http.json("GET", "/api/groups/compare", params=params))

    def compare_url(self, run_ids: Sequence[RunRef]) -> str:
        """The dashboard's compare page for these runs."""
        return f"{self.url}/compare.html?runs={','.join(str(run_ref(run_id)) for run_id in run_ids)}"

    def run_url(self, run_id: RunRef) -> str:
        """The dashboard's page of one run."""
        return f"{self.url}/run.html?id={run_ref(run_id)}"

    # Uploads

    def upload_model(self, path: str | os.PathLike[str]) -> Upload:
        """Upload a Keras v3 `.keras` model (checked without being loaded); a run trains it with
        `{"recipe": {"kind": "uploaded_model", "upload_id": ...}}`."""
        return self._upload("/api/models", Path(path))

    def upload_dataset(self, path: str | os.PathLike[str]) -> Upload:
        """Upload an `.npz` data set with arrays x_train, y_train, x_test, y_test."""
        return self._upload("/api/datasets", Path(path))

    def get_upload(self, upload_id: int) -> Upload:
        """An upload's metadata."""
        return Upload.model_validate(self._http.json("GET", f"/api/uploads/{int(upload_id)}"))

    def _upload(self, route: str, path: Path) -> Upload:
        try:
            handle: IO[bytes] = path.open("rb")
        except OSError as error:
            raise PruneLabError(f"cannot read {path}: {error.strerror}") from None
        with handle:
            body = self._http.json(
                "POST", route, files={"file": (path.name, handle)}, timeout=httpx.Timeout(30.0, write=600.0)
            )
        return Upload.model_validate(body)
