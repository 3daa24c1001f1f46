"""The `prunelab` command: the client's verbs (submit, sweep, runs, watch, download, cancel, compare) and, where the
server is installed, its verbs (run, api, worker, migrate, users, tokens, ...) from `prunelab.server.cli`.

Errors print the server's message and exit 1 (2 for a wrong command line), never a traceback.
Shell completion: `eval "$(prunelab completion bash)"` (or zsh, fish).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import yaml
from click.shell_completion import get_completion_class

from prunelab import __version__
from prunelab.client import Client
from prunelab.downloads import DOWNLOAD_FORMATS
from prunelab.errors import PruneLabError
from prunelab.models import Run, Sweep
from prunelab.progress import describe

# The server's verbs (prunelab.server.cli), listed here so `prunelab --help` shows them with or without the server.
SERVER_COMMANDS = {
    "run": "Migrate, then start the API and one worker (the embedded default).",
    "api": "Start the API server.",
    "worker": "Start a training worker.",
    "migrate": "Create or upgrade the database schema.",
    "reap": "One reaper pass: requeue or fail dead runs.",
    "compact": "Compact the metric history of finished runs.",
    "report": "Write an HTML comparison of runs, read from the server's database.",
    "users": "Add and list the people who sign in.",
    "tokens": "API tokens for scripts.",
    "import": "Import TensorBoard event files or MLflow runs as PruneLab runs.",
    "export": "Export a PruneLab run in a form MLflow can import.",
    "backup": "Copy the database and every stored object into a folder, while PruneLab runs.",
    "restore": "Restore a backup into an empty installation.",
}
INSTALL_SERVER = "pip install 'prunelab[server]'  (the server; add [worker] to train here)"


def server_installed() -> bool:
    return importlib.util.find_spec("prunelab.server") is not None and importlib.util.find_spec("fastapi") is not None


class PruneLabGroup(click.Group):
    """Lists the client's and the server's commands apart in `--help`."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {"Client commands": [], "Server commands": []}
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            section = "Server commands" if name in SERVER_COMMANDS else "Client commands"
            sections[section].append((name, command.get_short_help_str(90)))
        for title, rows in sections.items():
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


@click.group(cls=PruneLabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="PRUNELAB_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="The PruneLab server (env PRUNELAB_URL).",
)
@click.option("--token", envvar="PRUNELAB_TOKEN", default=None, help="An API token (env PRUNELAB_TOKEN).")
@click.version_option(__version__, prog_name="prunelab")
@click.pass_context
def cli(ctx: click.Context, url: str, token: str | None) -> None:
    """PruneLab: track and compare tfmot pruning runs."""
    ctx.obj = {"url": url, "token": token}


def client_from(ctx: click.Context) -> Client:
    settings = ctx.find_root().obj or {}
    client = Client(settings.get("url"), settings.get("token"))
    ctx.call_on_close(client.close)
    return client


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def run_line(run: Run) -> str:
    step = f"{run.step or 0}/{run.total_steps}" if run.total_steps else str(run.step or "")
    return f"{run.id}\t{run.status}\t{step}\t{run.name}\t{describe(run.latest)}"


def finished_ok(run: Run) -> int:
    """Print how a run ended; 0 when it succeeded, 1 otherwise."""
    summary = run.summary or {}
    measured, accuracy = summary.get("measured_sparsity"), summary.get("test_accuracy")
    figures = "".join(
        f", {label} {value:.4f}"
        for label, value in (("sparsity", measured), ("test accuracy", accuracy))
        if isinstance(value, int | float)
    )
    click.echo(f"run {run.id} {run.status}{figures}")
    if run.status != "succeeded":
        if run.error:
            click.echo(f"prunelab: run {run.id}: {run.error}", err=True)
        return 1
    return 0


@cli.command()
@click.argument("spec", type=click.File("r"))
@click.option("--wait", "wait_", is_flag=True, help="Follow the run until it ends; exit 1 unless it succeeded.")
@click.option("--json", "as_json", is_flag=True, help="Print the created run as JSON.")
@click.pass_context
def submit(ctx: click.Context, spec: Any, wait_: bool, as_json: bool) -> int:
    """Submit the run spec in SPEC (a JSON file, - for stdin)."""
    try:
        body = json.load(spec)
    except json.JSONDecodeError as error:
        raise PruneLabError(f"{spec.name} is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise PruneLabError(f"{spec.name} must hold one JSON object (a run spec)")
    client = client_from(ctx)
    run = client.create_run(body)
    if as_json:
        echo_json(run.model_dump(mode="json"))
    else:
        click.echo(f"run {run.id} {run.status}: {run.name} ({run.total_steps} steps)  {client.run_url(run.id)}")
    if wait_:
        return finished_ok(client.wait(run.id, progress=True))
    return 0


@cli.group()
def sweep() -> None:
    """Submit and follow sweeps (a grid of runs: variants x axes x seeds)."""


def sweep_progress(sweep: Sweep) -> str:
    counts = sweep.progress
    parts = [f"{getattr(counts, name)} {name}" for name in ("queued", "running", "succeeded", "failed", "cancelled",
                                                             "missing") if getattr(counts, name)]  # fmt: skip
    return f"sweep {sweep.id} {sweep.status}: {', '.join(parts) or 'no points'} of {counts.total}"


@sweep.command("submit")
@click.argument("spec", type=click.File("r"))
@click.option(
    "--wait", "wait_", is_flag=True, help="Follow the sweep until it ends; exit 1 unless every point succeeded."
)
@click.option("--timeout", type=float, default=None, help="With --wait: give up after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the created sweep as JSON.")
@click.pass_context
def sweep_submit(ctx: click.Context, spec: Any, wait_: bool, timeout: float | None, as_json: bool) -> int:
    """Submit the sweep in SPEC (YAML or JSON, - for stdin): base, variants, axes, seeds."""
    try:
        body = yaml.safe_load(spec)
    except yaml.YAMLError as error:
        raise PruneLabError(f"{spec.name} is not YAML: {error}") from None
    if not isinstance(body, dict):
        raise PruneLabError(f"{spec.name} must hold one mapping (a sweep: base, variants, axes, seeds)")
    client = client_from(ctx)
    created = client.submit_sweep(body)
    if as_json:
        echo_json(created.model_dump(mode="json"))
    else:
        click.echo(f"{sweep_progress(created)}  {client.sweep_url(created.id)}")
    if not wait_:
        return 0
    ended = client.wait_sweep(created.id, timeout=timeout)
    click.echo(sweep_progress(ended))
    return 0 if ended.progress.succeeded == ended.progress.total else 1


@sweep.command("status")
@click.argument("sweep_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the sweep, its points and runs as JSON.")
@click.option("--metric", default="test_accuracy", show_default=True, help="The final metric groups are compared on.")
@click.pass_context
def sweep_status(ctx: click.Context, sweep_id: int, as_json: bool, metric: str) -> int:
    """Show a sweep's progress, each point's run, its groups (every axis but the seed) and, for two variants,
    their difference at each setting with its 95% interval, p and n."""
    shown = client_from(ctx).sweep(sweep_id)
    if as_json:
        echo_json(shown.model_dump(mode="json"))
        return 0
    click.echo(sweep_progress(shown))
    runs_by_id = {run.id: run for run in shown.runs}
    for point in shown.points:
        where = ", ".join([*([point.variant] if point.variant else []), *(f"{k}={v}" for k, v in point.values.items())])
        run = runs_by_id.get(point.run_id) if point.run_id is not None else None
        accuracy = (run.summary or {}).get("test_accuracy") if run else None
        figure = f"\ttest accuracy {accuracy:.4f}" if isinstance(accuracy, int | float) else ""
        click.echo(f"{point.index}\t{point.status}\trun {point.run_id or '-'}\t{where}, seed={point.seed}{figure}")
    if shown.group_by:
        echo_sweep_groups(client_from(ctx), shown, metric)
    return 0


@sweep.command("report")
@click.argument("sweep_id", metavar="ID", type=int)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The HTML file to write.")
@click.option("--metric", default="test_accuracy", show_default=True, help="The final metric groups are compared on.")
@click.pass_context
def sweep_report(ctx: click.Context, sweep_id: int, output: Path, metric: str) -> int:
    """Write a sweep's self-contained HTML report: frontier, groups, comparisons, curves, its spec and points."""
    written = client_from(ctx).write_sweep_report(sweep_id, output, metric=metric)
    click.echo(f"wrote {written}")
    return 0


def echo_sweep_groups(client: Client, shown: Sweep, metric: str) -> None:
    """The sweep grouped by every axis but the seed: n and mean +- std per group, then, for two variants, each
    setting's difference with its Welch interval, p and n, as the server words it."""
    where = f'tag:"{shown.tag}"'
    table = client.group_table(shown.group_by, metrics=[metric], filter=where)
    click.echo(f"\ngroups by {', '.join(shown.group_by)} ({metric}, succeeded runs):")
    for group in table["groups"]:
        summary = group["metrics"].get(metric, {})
        mean, std = summary.get("mean"), summary.get("std")
        figure = "-" if mean is None else f"{mean:.4f}" + ("" if std is None else f" +- {std:.4f}")
        failed = f", {len(group['failed_run_ids'])} failed" if group["failed_run_ids"] else ""
        click.echo(f"  {group['label']}\tn={summary.get('n', 0)}{failed}\t{figure}")
    variants = list(shown.spec.get("variants") or {})
    if len(variants) != 2:
        return
    # Pair the groups that differ only in their variant: one comparison per setting of the other axes.
    others = [field for field in shown.group_by if field != "tag:variant"]
    by_setting: dict[tuple[Any, ...], dict[str, str]] = {}
    for group in table["groups"]:
        setting = tuple(group["key"].get(field) for field in others)
        by_setting.setdefault(setting, {})[str(group["key"].get("tag:variant"))] = group["label"]
    for labels in by_setting.values():
        if set(labels) == set(variants):
            second, first = labels[variants[1]], labels[variants[0]]
            comparison = client.compare_groups(shown.group_by, second, first, metric=metric, filter=where)
            click.echo(f"  {comparison.sentence}")


@cli.group()
def runs() -> None:
    """List and show runs."""


@runs.command("ls")
@click.argument("filter_", metavar="[FILTER]", required=False)
@click.option("-n", "--limit", type=click.IntRange(1), default=50, show_default=True, help="At most this many runs.")
@click.option("--sort", help="created, id, name, status or a metric key (the server's sort).")
@click.option("--asc", is_flag=True, help="Ascending (default: descending).")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@click.pass_context
def runs_ls(ctx: click.Context, filter_: str | None, limit: int, sort: str | None, asc: bool, as_json: bool) -> int:
    """List runs, newest first; FILTER is the server's filter, e.g. 'accuracy > 0.98 tag:sweep'."""
    found = client_from(ctx).list_runs(filter_, sort=sort, order="asc" if asc else None, limit=limit)
    if as_json:
        echo_json([run.model_dump(mode="json") for run in found])
    elif not found:
        click.echo("no runs")
    else:
        click.echo("ID\tSTATUS\tSTEP\tNAME\tLATEST")
        for run in found:
            click.echo(run_line(run))
    return 0


@runs.command("show")
@click.argument("run_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@click.pass_context
def runs_show(ctx: click.Context, run_id: int, as_json: bool) -> int:
    """Show one run: status, plan, latest values, summary and files."""
    client = client_from(ctx)
    run = client.get_run(run_id)
    if as_json:
        echo_json(run.model_dump(mode="json"))
        return 0
    rows: list[tuple[str, Any]] = [
        ("name", run.name),
        ("status", run.status + (" (cancel requested)" if run.cancel_requested and not run.finished else "")),
        ("queue", f"position {run.queue_position}" if run.queue_position else None),
        ("waiting", run.waiting),
        ("step", f"{run.step or 0} of {run.total_steps}"),
        ("owner", run.owner),
        ("tags", ", ".join(run.tags)),
        ("created", run.created_at),
        ("finished", run.finished_at),
        ("latest", describe(run.latest)),
        ("error", run.error),
        ("page", client.run_url(run.id)),
    ]
    click.echo(f"run {run.id}")
    for label, value in rows:
        if value not in (None, ""):
            click.echo(f"  {label:<10}{value}")
    figures = {key: value for key, value in (run.summary or {}).items() if isinstance(value, int | float | str)}
    if figures:
        click.echo("  summary")
        width = max(map(len, figures)) + 2
        for key, value in sorted(figures.items()):
            click.echo(f"    {key:<{width}}{value:.6g}" if isinstance(value, float) else f"    {key:<{width}}{value}")
    for artifact in run.artifacts:
        click.echo(f"  file      {artifact.format}\t{artifact.size_bytes:,} bytes\tsha256 {artifact.sha256[:16]}")
    return 0


@runs.command("rm")
@click.argument("run_id", metavar="ID", type=int)
@click.pass_context
def runs_rm(ctx: click.Context, run_id: int) -> int:
    """Delete a finished or queued run with its metrics and files."""
    client_from(ctx).delete(run_id)
    click.echo(f"deleted run {run_id}")
    return 0


@runs.command("tag")
@click.argument("run_id", metavar="ID", type=int)
@click.argument("tags", metavar="TAG...", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove these tags instead of adding them.")
@click.pass_context
def runs_tag(ctx: click.Context, run_id: int, tags: tuple[str, ...], remove: bool) -> int:
    """Add (or --remove) tags on a run."""
    client = client_from(ctx)
    run = client.remove_tags(run_id, *tags) if remove else client.add_tags(run_id, *tags)
    click.echo(f"run {run.id} tags: {', '.join(run.tags) or '(none)'}")
    return 0


@cli.command()
@click.argument("run_id", metavar="ID", type=int)
@click.option("--timeout", type=float, default=None, help="Give up after this many seconds.")
@click.pass_context
def watch(ctx: click.Context, run_id: int, timeout: float | None) -> int:
    """Follow a run live (steps, sparsity, accuracy) until it ends; exit 1 unless it succeeded."""
    return finished_ok(client_from(ctx).wait(run_id, timeout, progress=True))


@cli.command()
@click.argument("run_id", metavar="ID", type=int)
@click.option(
    "-f", "--format", "file_format", type=click.Choice(list(DOWNLOAD_FORMATS)), default="keras", show_default=True
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="File or folder (default: the server's name, here)."
)
@click.pass_context
def download(ctx: click.Context, run_id: int, file_format: str, output: Path | None) -> int:
    """Download a run's model (or manifest/rewind), resuming a cut download; the sha256 is checked."""
    done = client_from(ctx).download(run_id, file_format, output, progress=None)
    resumed = f", resumed at byte {done.resumed_from:,}" if done.resumed_from else ""
    click.echo(f"wrote {done.path} ({done.size_bytes:,} bytes, sha256 {done.sha256[:16]}… verified{resumed})")
    return 0


@cli.command()
@click.argument("run_id", metavar="ID", type=int)
@click.pass_context
def cancel(ctx: click.Context, run_id: int) -> int:
    """Cancel a run: a queued run never starts, a running one stops within a few steps."""
    run = client_from(ctx).cancel(run_id)
    click.echo(f"run {run.id} {run.status}" + (" (stopping)" if run.status == "running" else ""))
    return 0


@cli.command("workers")
@click.option("--json", "as_json", is_flag=True, help="Print the workers and the queue as JSON.")
@click.pass_context
def workers_(ctx: click.Context, as_json: bool) -> int:
    """List the workers (online, gone, stopped), the runs each trains, and the queue."""
    seen = client_from(ctx).workers()
    if as_json:
        echo_json(seen)
        return 0
    click.echo("NAME\tSTATE\tHOST\tQUEUES\tCONCURRENCY\tKERAS_BACKENDS\tRUNNING\tHEARTBEAT")
    for worker in seen["workers"]:
        running = ",".join(map(str, worker["running"])) or "-"
        backends = worker.get("keras_backends")
        keras = "?" if backends is None else ",".join(backends) or "-"
        click.echo(
            f"{worker['name']}\t{worker['state']}\t{worker['host']}\t{','.join(worker['queues'])}\t"
            f"{worker['concurrency']}\t{keras}\t{running}\t{worker['heartbeat_at']}"
        )
    queue = seen["queue"]
    click.echo(f"queue {queue['name']}: {queue['length']} run(s) waiting")
    for run in queue["runs"]:
        click.echo(f"  {run['position']}. run {run['id']}\t{run['name']}")
    if queue["waiting"]:
        click.echo(f"prunelab: {queue['waiting']}", err=True)
    return 0


@cli.command()
@click.argument("run_ids", metavar="ID...", type=int, nargs=-1, required=True)
@click.option("--open", "open_page", is_flag=True, help="Open the dashboard's compare page in a browser.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the self-contained HTML report here.")
@click.option("--baseline", type=int, help="A run drawn dashed as the dense baseline.")
@click.pass_context
def compare(
    ctx: click.Context, run_ids: tuple[int, ...], open_page: bool, output: Path | None, baseline: int | None
) -> int:
    """Compare runs: a table here, the dashboard's page (--open), or an HTML report (-o report.html)."""
    client = client_from(ctx)
    if output is not None:
        client.write_report(run_ids, output, baseline=baseline)
        click.echo(f"wrote {output} ({len(set(run_ids))} runs)")
        return 0
    compared = client.compare(run_ids, keys=["measured_sparsity"], max_points=100, baseline=baseline)
    if open_page:
        url = client.compare_url(run_ids)
        click.echo(url)
        webbrowser.open(url)
        return 0
    pareto = set(compared.get("pareto_ids", []))
    click.echo("ID\tSTATUS\tSPARSITY\tTEST ACC\tPARETO\tNAME")
    for run in compared["runs"]:
        summary = run.get("summary") or {}
        figures = [summary.get("measured_sparsity"), summary.get("test_accuracy")]
        shown = [f"{value:.4f}" if isinstance(value, int | float) else "-" for value in figures]
        click.echo(
            f"{run['id']}\t{run['status']}\t{shown[0]}\t{shown[1]}\t{'*' if run['id'] in pareto else ''}\t{run['name']}"
        )
    for difference in compared.get("differences", [])[:20]:
        click.echo(f"  differs: {difference.get('parameter', difference)}")
    return 0


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(prunelab completion bash)"."""
    completer = get_completion_class(shell)
    assert completer is not None
    click.echo(completer(cli, {}, "prunelab", "_PRUNELAB_COMPLETE").source())


def server_command(name: str, summary: str) -> click.Command:
    @click.command(
        name,
        help=summary,
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> int:
        if not server_installed():
            click.echo(
                f"prunelab {name}: a server command; the server is not installed here: {INSTALL_SERVER}", err=True
            )
            return 2
        from prunelab.server.cli import main as server_main

        return server_main([name, *args])

    return command


for _name, _summary in SERVER_COMMANDS.items():
    cli.add_command(server_command(_name, _summary))


def main(argv: Sequence[str] | None = None) -> int:
    """Run `prunelab`; returns the exit status (the console script exits with it)."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="prunelab", standalone_mode=False)
    except PruneLabError as error:
        click.echo(f"prunelab: {error}", err=True)
        return 1
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
