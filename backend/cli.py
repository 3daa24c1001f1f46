"""The `prunelab` command: start PruneLab, or one of its processes."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from prunelab.server.imports.cli import add_commands as add_import_commands
from prunelab.server.imports.cli import run_command as run_import_command
from prunelab.server.settings import Settings, get_settings
from prunelab.server.users.cli import add_commands as add_user_commands
from prunelab.server.users.cli import run_command as run_user_command


def worker_command(settings: Settings, name: str | None = None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "prunelab.worker.celery_app",
        "worker",
        "--loglevel",
        "INFO",
        "--pool",
        "prefork",
        "--concurrency",
        str(settings.worker_concurrency),
        "--queues",
        settings.queue,
        "--hostname",
        name or f"worker{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
    ]


def api_command(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "prunelab.server.app:app",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--no-server-header",
    ]


def migrate(settings: Settings) -> None:
    from prunelab.server.migrate import upgrade_to_head

    settings.ensure_dirs()
    upgrade_to_head(settings.database_url)


def _stop(processes: Sequence[subprocess.Popen[bytes]], grace_s: float = 60.0) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_report(
    run_ids: Sequence[int], output: str, baseline: int | None, by: str | None = None, metric: str = "test_accuracy"
) -> int:
    """Read the runs from the configured database and write the report (grouped when `by` names fields); 2 when a
    run is missing or a group field is unknown."""
    from pathlib import Path

    from prunelab.core.errors import InvalidSpec, RunNotFound
    from prunelab.server.compare.groups import grouped_report
    from prunelab.server.compare.report import build_report
    from prunelab.server.compare.service import MAX_RUNS, compare_runs
    from prunelab.server.db import session_scope

    unique = list(dict.fromkeys(run_ids))
    if len(unique) > MAX_RUNS - 1:
        print(f"prunelab report: at most {MAX_RUNS - 1} runs, got {len(unique)}", file=sys.stderr)
        return 2
    try:
        with session_scope() as session:
            fields = [field for field in (by or "").split(",") if field.strip()]
            grouped = grouped_report(session, "", fields, metric, unique, baseline) if fields else None
            html = build_report(compare_runs(session, unique, None, 2000, baseline), grouped)
    except (RunNotFound, InvalidSpec) as error:
        print(f"prunelab report: {error.message}", file=sys.stderr)
        return 2
    Path(output).write_text(html, encoding="utf-8")
    print(f"wrote {output} ({len(unique)} runs)")
    return 0


def refuse_open_exposure(settings: Settings) -> bool:
    """True (with the reason on stderr) when PruneLab would listen beyond loopback with nobody to sign in."""
    from prunelab.server.users.exposure import open_exposure

    reason = open_exposure(settings)
    if reason is not None:
        print(f"prunelab: {reason}", file=sys.stderr)
    return reason is not None


def store_unreachable(command: str, settings: Settings) -> bool:
    """True (with what to do on stderr) when the artifact store does not answer: better now than at the first run."""
    from prunelab.server.artifacts.service import unreachable

    reason = unreachable(settings)
    if reason is not None:
        print(f"prunelab {command}: {reason}", file=sys.stderr)
    return reason is not None


def backup_command(args: argparse.Namespace, settings: Settings) -> int:
    """`prunelab backup DIR` / `prunelab restore DIR [--overwrite]`: 1 with the reason when it cannot be done."""
    from pathlib import Path

    from prunelab.server.artifacts.storage import StoreUnavailable
    from prunelab.server.backup import BackupError, backup, restore

    def report(line: str) -> None:
        print(line, flush=True)

    try:
        if args.command == "backup":
            backup(settings, Path(args.folder), report)
        else:
            restore(settings, Path(args.folder), args.overwrite, report)
    except (BackupError, StoreUnavailable) as error:
        print(f"prunelab {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


def missing_worker_extra(command: str) -> bool:
    """A training worker needs TensorFlow, which the API alone does not install; say how to get it."""
    if importlib.util.find_spec("tensorflow") is not None:
        return False
    print(
        f"prunelab {command}: the training worker needs TensorFlow, which is not installed here. "
        "Install the worker extra: pip install 'prunelab[worker]' (or start only the API: prunelab api).",
        file=sys.stderr,
    )
    return True


class SupervisedWorker:
    """The embedded worker, started again with backoff when it dies (killed, out of memory) while the API runs.

    The wait doubles from `first_backoff_s` up to `max_backoff_s` and starts over once a worker has lived
    `healthy_after_s`; the run it was training is requeued by the reaper and resumes from its checkpoint.
    """

    def __init__(
        self,
        command: list[str],
        first_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        healthy_after_s: float = 60.0,
    ) -> None:
        self.command = command
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.healthy_after_s = healthy_after_s
        self.backoff_s = first_backoff_s
        self.restarts = 0
        self.process: subprocess.Popen[bytes] = self._start()
        self._restart_at: float | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        # Own session: the terminal's Ctrl-C reaches only `prunelab run`, which stops both in order.
        process = subprocess.Popen(self.command, start_new_session=True)
        self._started_at = time.monotonic()
        print(f"PruneLab worker started (pid {process.pid})", flush=True)
        return process

    def check(self) -> None:
        """Start the worker again once its backoff has passed, if it died."""
        now = time.monotonic()
        if self._restart_at is None:
            code = self.process.poll()
            if code is None:
                return
            if now - self._started_at >= self.healthy_after_s:
                self.backoff_s = self.first_backoff_s
            self._restart_at = now + self.backoff_s
            print(f"PruneLab worker exited with code {code}; restarting it in {self.backoff_s:.0f} s "
                  f"(restart {self.restarts + 1})", flush=True)  # fmt: skip
            self.backoff_s = min(self.backoff_s * 2, self.max_backoff_s)
        elif now >= self._restart_at:
            self._restart_at = None
            self.restarts += 1
            self.process = self._start()


def run_all(settings: Settings) -> int:
    """Migrate, then run the API and one worker until Ctrl-C or until the API exits; a dead worker is restarted."""
    migrate(settings)
    if refuse_open_exposure(settings):
        return 2
    worker = SupervisedWorker(worker_command(settings))
    api = subprocess.Popen(api_command(settings), start_new_session=True)
    print(f"PruneLab is starting on http://{settings.host}:{settings.port}  (Ctrl-C stops it)", flush=True)
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stopping and api.poll() is None:
            worker.check()
            time.sleep(0.2)
    finally:
        print("PruneLab is stopping: a running training is interrupted and marked failed.", flush=True)
        _stop([api, worker.process])
    crashed = not stopping
    return 1 if crashed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prunelab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="migrate, then start the API and one worker (the embedded default)")
    commands.add_parser("api", help="start the API server")
    worker = commands.add_parser("worker", help="start a training worker")
    worker.add_argument("--name", help="Celery node name (default: unique per process)")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    commands.add_parser("reap", help="one reaper pass: requeue or fail dead runs, re-send runs lost by the broker")
    commands.add_parser("compact", help="compact the metric history of every finished run that still has hot rows")
    report = commands.add_parser("report", help="write a comparison of runs as one self-contained HTML file")
    report.add_argument("run_ids", metavar="RUN_ID", type=int, nargs="+", help="runs to compare (at most 20)")
    report.add_argument("-o", "--output", default="report.html", help="file to write (default: report.html)")
    report.add_argument("--baseline", type=int, help="a run drawn dashed as the dense baseline")
    report.add_argument("--by", help="group the runs by these fields, e.g. schedule.kind,sparsity (adds the group "
                        "table, Welch comparisons and the frontier)")  # fmt: skip
    report.add_argument("--metric", default="test_accuracy", help="the final metric groups are compared on")
    backup = commands.add_parser(
        "backup", help="copy the database and every stored object into a new folder, while PruneLab runs"
    )
    backup.add_argument("folder", metavar="DIR", help="a new (or empty) folder")
    restore = commands.add_parser("restore", help="restore a backup into an empty installation")
    restore.add_argument("folder", metavar="DIR", help="a folder `prunelab backup` wrote")
    restore.add_argument("--overwrite", action="store_true", help="replace every run, user and object already here")
    add_user_commands(commands)
    add_import_commands(commands)
    args = parser.parse_args(argv)
    settings = get_settings()

    if args.command in ("run", "worker") and missing_worker_extra(args.command):
        return 2
    if args.command in ("run", "api", "worker", "backup", "restore") and store_unreachable(args.command, settings):
        return 1
    if args.command == "run":
        return run_all(settings)
    if args.command in ("backup", "restore"):
        return backup_command(args, settings)
    if args.command == "migrate":
        migrate(settings)
        return 0
    if args.command == "reap":
        from prunelab.server.runs.reaper import reap_once

        reaped = reap_once(settings)
        print(f"requeued {reaped.requeued}, failed {reaped.failed}, re-sent {reaped.resent}", flush=True)
        return 0
    if args.command == "compact":
        from prunelab.server.metrics.compaction import compact_pending

        total = 0
        while batch := compact_pending(limit=50, settled_s=0):
            total += len(batch)
            print(f"compacted runs {batch}", flush=True)
        print(f"compacted {total} runs", flush=True)
        return 0
    if args.command == "report":
        return write_report(args.run_ids, args.output, args.baseline, args.by, args.metric)
    if args.command in ("users", "tokens"):
        return run_user_command(args)
    if args.command in ("import", "export"):
        return run_import_command(args)
    if args.command == "api":
        if refuse_open_exposure(settings):
            return 2
        os.execv(sys.executable, api_command(settings))
    if args.command == "worker":
        settings.ensure_dirs()
        os.execv(sys.executable, worker_command(settings, args.name))
    return 2


if __name__ == "__main__":
    sys.exit(main())
