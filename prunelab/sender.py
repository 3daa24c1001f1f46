"""The background sender: takes what training logs, keeps it in the spool, and delivers it when the server answers.

Training calls `log` (a dictionary into an in-memory queue: microseconds, never the network);
one daemon thread moves queued points into the spool file, then sends them in batches, creates
the run first when it has no id yet, and after a run's last point uploads its files and finishes
it. A failure to connect, a timeout or a 5xx leaves everything in the spool and waits (backing
off up to `max_backoff_s`); nothing a server does can raise in the training thread.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from prunelab.spool import Point, Spool, SpooledRun

log = logging.getLogger("prunelab")

BATCH_POINTS = 5_000  # the server takes up to 10,000 per request
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


class Refused(Exception):
    """The server answered, and will answer the same again: the request must not be retried."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        # 404 (deleted) or 409 (cancelled on the dashboard, or failed by the reaper): the run takes nothing more.
        self.run_ended = status_code in (404, 409)


class Sender:
    """Delivers the spool's runs for one server, from one daemon thread."""

    def __init__(
        self,
        url: str,
        token: str | None,
        spool: Spool,
        flush_interval_s: float = 0.5,
        timeout_s: float = 10.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.spool = spool
        self.flush_interval_s = flush_interval_s
        self.max_backoff_s = max_backoff_s
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        self._inbox: queue.SimpleQueue[tuple[str, list[Point]]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._run_ids: dict[str, int] = {}
        self._refused: dict[str, str] = {}  # run key -> why the server refuses it (until this process ends)
        self._ended: set[str] = set()  # run keys the server says ended (cancelled, failed, deleted)
        self._paused_until = 0.0
        self._backoff = flush_interval_s
        self._server_down = False
        self._queued = 0
        self._thread = threading.Thread(target=self._loop, name="prunelab-sender", daemon=True)

    # The training thread's side: never blocks on the network.
    def start(self) -> Sender:
        self._thread.start()
        return self

    def open_run(self, run_key: str, spec: dict[str, Any]) -> None:
        self.spool.add_run(run_key, self.url, spec)
        self._wake.set()

    def log(self, run_key: str, step: int, metrics: Mapping[str, float], wall_time: float) -> None:
        points = [Point(key, step, float(value), wall_time) for key, value in metrics.items()]
        self._queued += len(points)
        self._inbox.put((run_key, points))

    def add_artifact(self, run_key: str, export_format: str, path: Path, sha256: str) -> None:
        self._move_inbox()
        self.spool.add_action(run_key, "artifact", {"format": export_format, "path": str(path), "sha256": sha256})
        self._wake.set()

    def finish(self, run_key: str, status: str, summary: dict[str, Any] | None, error: str | None = None) -> None:
        self._move_inbox()
        payload = {"status": status, "summary": finite(summary), "error": error}
        self.spool.add_action(run_key, "finish", payload)
        self._wake.set()

    def run_id(self, run_key: str) -> int | None:
        return self._run_ids.get(run_key)

    def refusal(self, run_key: str) -> str | None:
        return self._refused.get(run_key)

    def run_ended(self, run_key: str) -> bool:
        """The server ended the run (cancelled on the dashboard, or deleted): the script may as well stop."""
        return run_key in self._ended

    def wait_for(self, run_key: str, timeout: float) -> bool:
        """Wait until everything of `run_key` is delivered (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while not self._delivered(run_key):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.2))
                self._wake.set()
        return True

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._http.close()

    def _delivered(self, run_key: str) -> bool:
        return self._inbox.empty() and (run_key in self._refused or not self.spool.has_work(run_key))

    # The sender thread's side.
    def _move_inbox(self) -> None:
        by_run: dict[str, list[Point]] = {}
        while True:
            try:
                run_key, points = self._inbox.get_nowait()
            except queue.Empty:
                break
            by_run.setdefault(run_key, []).extend(points)
        for run_key, points in by_run.items():
            if run_key not in self._ended:  # a run the server ended takes no more points: they are dropped
                self.spool.add_points(run_key, points)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self._move_inbox()
                if time.monotonic() >= self._paused_until:
                    self._deliver_all()
            except Exception:  # the sender must outlive anything; the spool keeps what was not sent
                log.exception("PruneLab: sending failed; what was not sent stays in %s", self.spool.path)
                self._pause()
            with self._idle:
                self._idle.notify_all()
        self._move_inbox()

    def _pause(self) -> None:
        self._paused_until = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.max_backoff_s)

    def _deliver_all(self) -> None:
        for run in self.spool.runs(self.url):
            if run.run_key in self._refused:
                continue
            try:
                self._deliver(run)
            except httpx.TransportError as error:
                if not self._server_down:
                    log.warning("PruneLab: %s unreachable (%s); spooling to %s", self.url, error, self.spool.path)
                self._server_down = True
                self._pause()
                return
            except Refused as refusal:
                log.warning("PruneLab: run %s refused: %s", self._run_ids.get(run.run_key, run.run_key), refusal)
                self._refused[run.run_key] = str(refusal)
                if refusal.run_ended:
                    self._ended.add(run.run_key)
                    self.spool.forget_run(run.run_key)  # nothing of it will ever be taken
                # Otherwise (a token refused, say) its points stay spooled for a later script with a valid token.
                continue
        if self._server_down:
            log.warning("PruneLab: %s answers again; spooled points are being sent", self.url)
        self._server_down = False
        self._backoff = self.flush_interval_s

    def _deliver(self, run: SpooledRun) -> None:
        run_id = run.run_id or self._create(run)
        self._run_ids[run.run_key] = run_id
        while points := self.spool.pending_points(run.run_key, BATCH_POINTS):
            self._send_points(run_id, run.run_key, points)
            if self._stop.is_set():
                return
        while (action := self.spool.next_action(run.run_key)) is not None:
            if action.kind == "artifact":
                self._upload(run_id, action.payload)
            elif action.kind == "finish":
                self._request("POST", f"/api/runs/{run_id}/finish", json=action.payload)
            self.spool.remove_action(action.seq)
            if action.kind == "finish":
                self.spool.forget_run(run.run_key)
                return

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if response.status_code in RETRYABLE:
            raise httpx.TransportError(f"{response.status_code} from {path}")
        if response.status_code >= 400:
            raise Refused(f"{method} {path}: {response.status_code} {_detail(response)}", response.status_code)
        return response

    def _create(self, run: SpooledRun) -> int:
        response = self._http.post("/api/runs/external", json=run.spec)
        if response.status_code == 422:
            # A spec this server does not take (an older server, say): the run is still worth having.
            log.warning("PruneLab: the server refused the run's spec (%s); logging without it", _detail(response))
            minimal = {key: run.spec[key] for key in ("source", "name") if key in run.spec}
            response = self._http.post("/api/runs/external", json=minimal)
        if response.status_code in RETRYABLE:
            raise httpx.TransportError(f"{response.status_code} creating the run")
        if response.status_code != 201:
            raise Refused(f"creating the run: {response.status_code} {_detail(response)}", response.status_code)
        run_id = int(response.json()["id"])
        self.spool.set_run_id(run.run_key, run_id)
        log.info("PruneLab: run %s at %s/runs/%s", run_id, self.url, run_id)
        return run_id

    def _send_points(self, run_id: int, run_key: str, points: list[Point]) -> None:
        # json.dumps writes NaN and Infinity (a diverged loss, stored as a gap); httpx's json= refuses them.
        body = json.dumps({"points": [p.as_json() for p in points]})
        response = self._request(
            "POST", f"/api/runs/{run_id}/points", content=body, headers={"Content-Type": "application/json"}
        )
        answer = response.json()
        for rejected in answer.get("rejected", [])[:5]:
            log.warning(
                "PruneLab: point %s at step %s rejected: %s", rejected["key"], rejected["step"], rejected["error"]
            )
        self.spool.remove_points(run_key, points)  # stored, or rejected for good: either way not sent again

    def _upload(self, run_id: int, payload: dict[str, Any]) -> None:
        path = Path(payload["path"])
        if not path.is_file():
            log.warning("PruneLab: %s is gone; the %s file of run %s is not uploaded", path, payload["format"], run_id)
            return
        with path.open("rb") as handle:
            self._request(
                "PUT",
                f"/api/runs/{run_id}/artifacts/{payload['format']}",
                files={"file": (path.name, handle, "application/octet-stream")},
                data={"sha256": payload["sha256"]},
                timeout=max(60.0, path.stat().st_size / 1e6),
            )
        if path.is_relative_to(self.spool.folder):
            path.unlink(missing_ok=True)


def finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None: JSON (and the server's summary) has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [finite(inner) for inner in value]
    return value


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))[:500]
    except ValueError:
        return response.text[:500]
