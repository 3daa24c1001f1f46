"""`prunelab import tensorboard|mlflow ...` and `prunelab export mlflow ...`, against the configured database.

Imports write through the same services as the API (no server needs to run); errors print one line
and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from prunelab.core.errors import PruneLabError
from prunelab.server.artifacts.service import get_store
from prunelab.server.db import session_scope
from prunelab.server.mlflow_api.errors import MlflowApiError
from prunelab.server.settings import get_settings
from prunelab.server.users import service as users


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    imports = commands.add_parser("import", help="import runs from TensorBoard or MLflow").add_subparsers(
        dest="kind", required=True
    )
    board = imports.add_parser("tensorboard", help="a folder of TensorBoard event files as one finished run")
    board.add_argument("folder", type=Path, help="the log folder (tfmot's PruningSummaries or Keras' TensorBoard)")
    board.add_argument("--name", default="", help="the run's name (default: the folder's name)")
    board.add_argument("--owner", help="the PruneLab user who owns the run")
    runs = imports.add_parser("mlflow", help="MLflow runs from a tracking server or an mlflow-export-import folder")
    runs.add_argument("source", help="a tracking server URL (http://host:5000) or a run or experiment export folder")
    runs.add_argument("--experiment", help="only this experiment's runs (by name; a server only)")
    runs.add_argument("--run-id", action="append", default=[], help="only this run (repeatable; a server only)")
    runs.add_argument("--token", help="the server's bearer token (default: $MLFLOW_TRACKING_TOKEN)")
    runs.add_argument("--owner", help="the PruneLab user who owns the runs")

    exports = commands.add_parser("export", help="export a run for another tracker").add_subparsers(
        dest="target", required=True
    )
    to_mlflow = exports.add_parser("mlflow", help="a run as mlflow-export-import's run folder (import-run reads it)")
    to_mlflow.add_argument("run_id", type=int, metavar="RUN_ID")
    to_mlflow.add_argument("folder", type=Path, metavar="DIR", help="the folder to write run.json (and artifacts/) in")


def _owner_id(session, name: str | None) -> int | None:  # type: ignore[no-untyped-def]
    return None if name is None else users.get_user(session, name).id


def run_command(args: argparse.Namespace) -> int:
    """Carry out an import or export command; 2 with the reason when it cannot be done."""
    # The readers load tensorboard and httpx: only when an import or export runs, not on every `prunelab`.
    from prunelab.server.imports import mlflow_runs, tensorboard

    what = f"prunelab {args.command} {args.kind if args.command == 'import' else args.target}"
    try:
        if args.command == "export":
            with session_scope() as session:
                path = mlflow_runs.export_run(session, get_store(get_settings()), args.run_id, args.folder)
            print(f"wrote run {args.run_id} to {path}")
            return 0
        if args.kind == "tensorboard":
            with session_scope() as session:
                run = tensorboard.import_folder(session, args.folder, args.name, _owner_id(session, args.owner))
                points = (run.summary or {}).get("imported", {}).get("points", 0)
                run_id = run.id
            print(f"imported run {run_id} from {args.folder} ({points} points)")
            return 0
        return _import_mlflow(args)
    except (PruneLabError, mlflow_runs.MlflowSourceError, users.UserError) as error:
        print(f"{what}: {getattr(error, 'message', None) or error}", file=sys.stderr)
        return 2
    except MlflowApiError as error:
        print(f"{what}: {error.message}", file=sys.stderr)
        return 2


def _import_mlflow(args: argparse.Namespace) -> int:
    from prunelab.server.imports import mlflow_runs

    source: str = args.source
    if source.startswith(("http://", "https://")):
        token = args.token or os.environ.get("MLFLOW_TRACKING_TOKEN")
        runs = mlflow_runs.read_server(source, args.experiment, args.run_id, token)
    else:
        runs = iter(mlflow_runs.read_folder(Path(source)))
    imported = []
    for source_run in runs:
        # One transaction per run: a failure later leaves the runs before it imported.
        with session_scope() as session:
            row = mlflow_runs.store_run(session, source_run, _owner_id(session, args.owner))
            imported.append((row.run_id, source_run.info.get("run_id", "?")))
    for run_id, source_id in imported:
        print(f"imported MLflow run {source_id} as run {run_id}")
    print(f"imported {len(imported)} run{'s' if len(imported) != 1 else ''} from {source}")
    return 0
