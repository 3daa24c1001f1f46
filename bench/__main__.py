"""`python -m bench [--quick] [--only NAME[,NAME...] ...] [--out docs/benchmarks.md]`: run the suite, write the report.

The report holds every benchmark: those run now, and the others from their latest stored result at the same size
(`bench/results/`), each labelled with the command, commit, date and load it ran under.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    compression,
    downloads,
    experiments_at_scale,
    ingestion,
    keras3_engine,
    live_streams,
    published_results,
    queue_throughput,
    readback,
    runs_at_scale,
    search_runs,
    sections,
    seed_frontier,
    seed_question,
    series_store,
    training_overhead,
)
from bench.machine import describe
from bench.report import Result, machine_line, render, write_charts
from harness.stack import REPO, shared_data_dir

BENCHMARKS = {
    module.NAME: module
    for module in (
        training_overhead,
        published_results,
        compression,
        ingestion,
        readback,
        series_store,
        queue_throughput,
        downloads,
        runs_at_scale,
        search_runs,
        live_streams,
        seed_question,
        seed_frontier,
        experiments_at_scale,
        keras3_engine,
    )
}


def closing_note(results: dict[str, Result]) -> list[str]:
    """The headline ratios, one line per benchmark that ran."""
    lines = []

    def figure(name: str, key: str) -> float | None:
        value = results[name].figures.get(key) if name in results else None
        return float(value) if isinstance(value, int | float) else None

    def fmt(value: float | None, pattern: str = "{:.3f}") -> str:
        return pattern.format(value) if value is not None else "n/a"

    if training_overhead.NAME in results:
        lines.append(
            "Training overhead, PruneLab worker / plain tfmot script: end-to-end "
            f"{fmt(figure(training_overhead.NAME, 'wall_ratio_postgresql'))} (PostgreSQL), "
            f"{fmt(figure(training_overhead.NAME, 'wall_ratio_sqlite'))} (SQLite); model.fit "
            f"{fmt(figure(training_overhead.NAME, 'fit_ratio_postgresql'))} / "
            f"{fmt(figure(training_overhead.NAME, 'fit_ratio_sqlite'))}; peak RSS "
            f"{fmt(figure(training_overhead.NAME, 'rss_ratio_postgresql'))}. Goal <= {training_overhead.GOAL} "
            f"({results[training_overhead.NAME].size})."
        )
    if published_results.NAME in results:
        name = published_results.NAME
        lines.append(
            "Published results through the API: test accuracy ConstantSparsity "
            f"{fmt(figure(name, 'accuracy_constant-87.5'), '{:.2%}')} (published 98.86%), PolynomialDecay "
            f"{fmt(figure(name, 'accuracy_polynomial-87.5'), '{:.2%}')} (99.27%); zip x smaller than dense "
            f"{fmt(figure(name, 'zip_ratio_constant-87.5'), '{:.2f}')} / "
            f"{fmt(figure(name, 'zip_ratio_polynomial-87.5'), '{:.2f}')} (published 4.13 / 4.17); 90% sparse "
            f"{fmt(figure(name, 'zip_ratio_polynomial-90'), '{:.1f}')}x by zip (about 6x) and "
            f"{fmt(figure(name, 'ptq_ratio_polynomial-90'), '{:.1f}')}x with PTQ (about 24x) "
            f"({results[name].size})."
        )
    if compression.NAME in results:
        name = compression.NAME
        result = results[name]

        def either(key: str, pattern: str) -> str:
            return fmt(figure(name, key), pattern)

        lines.append(
            "Compression (the seeds' CNN through the API): seed table ConstantSparsity "
            f"{either('accuracy_mnist_constant', '{:.2%}')} (published 98.86%), PolynomialDecay "
            f"{either('accuracy_mnist_polynomial', '{:.2%}')} (99.27%); prune -> cluster -> PCQAT -> int8 TFLite "
            f"{either('x_smaller_mnist_chain', '{:.1f}')}x smaller than the dense .h5 zip at "
            f"{either('accuracy_loss_points_mnist_chain', '{:.2f}')} points (goal >= 20x at <= 0.3: "
            f"{result.figures.get('goal_met_mnist_chain', 'n/a')}); Fashion-MNIST "
            f"{either('x_smaller_fashion_mnist_chain', '{:.1f}')}x at "
            f"{either('accuracy_loss_points_fashion_mnist_chain', '{:.2f}')} points (goal >= 15x at <= 0.5: "
            f"{result.figures.get('goal_met_fashion_mnist_chain', 'n/a')}) ({result.size})."
        )
    if ingestion.NAME in results:

        def rate(key: str) -> str:
            return fmt(figure(ingestion.NAME, key), "{:,.0f}")

        lines.append(
            f"Ingestion (the worker's reporter): {rate('points_per_s_postgresql')} points/s to PostgreSQL (before "
            f"{rate('before_points_per_s_postgresql')}), {rate('points_per_s_sqlite')} to SQLite (before "
            f"{rate('before_points_per_s_sqlite')}); record_points in 50,000-point batches "
            f"{rate('record_points_per_s_postgresql')} / {rate('record_points_per_s_sqlite')}; 8 concurrent writers "
            f"{rate('writers_points_per_s_postgresql')} / {rate('writers_points_per_s_sqlite')}; MLflow's log-batch "
            f"{rate('mlflow_log_batch_points_per_s')} in the same run. Logging costs "
            f"{fmt(figure(ingestion.NAME, 'logging_fraction_of_step'), '{:.2%}')} of a training step "
            f"(the worker's reporter), {fmt(figure(ingestion.NAME, 'callback_fraction_of_step'), '{:.2%}')} "
            "(PruneLabCallback in your own script)."
        )
    if readback.NAME in results:
        ratios = [
            f"{key.split('_')[2]} run(s) {value:.3f}"
            for key, value in results[readback.NAME].figures.items()
            if key.startswith("raw_ratio_") and isinstance(value, float)
        ]
        lines.append(
            "Reading back, PruneLab / MLflow p50 latency of full histories: "
            + (", ".join(ratios) if ratios else "MLflow not run")
            + f" ({results[readback.NAME].size})."
        )
    if series_store.NAME in results:
        name = series_store.NAME

        def both(key: str, pattern: str = "{:,.0f}") -> str:
            return f"{fmt(figure(name, key + '_postgresql'), pattern)} / {fmt(figure(name, key + '_sqlite'), pattern)}"

        lines.append(
            "Metric history store (PostgreSQL / SQLite, p50): compare page "
            f"{both('compare_before_ms')} ms before, {both('compare_after_ms')} ms after; run page "
            f"{both('run_page_after_ms')} ms; {both('bytes_per_point_after', '{:.1f}')} B per point. "
            f"80 M points: compare {both('compare_big_ms')} ms, run page {both('run_page_big_ms')} ms, 100 layers "
            f"{both('layered_big_ms')} ms, 1,000-step zoom {both('zoom_big_ms')} ms "
            f"({results[name].size})."
        )
    if queue_throughput.NAME in results:
        name = queue_throughput.NAME
        lines.append(
            "Queue (PostgreSQL + Redis): POST to first logged step "
            f"{fmt(figure(name, 'first_step_ms_postgresql'), '{:,.0f}')} ms; "
            f"{fmt(figure(name, 'runs_per_minute_1_worker_postgresql'), '{:.1f}')} tiny runs/min with 1 worker, "
            f"{fmt(figure(name, 'runs_per_minute_2_workers_postgresql'), '{:.1f}')} with 2."
        )
    if downloads.NAME in results:
        lines.append(
            "Downloads through the API, S3 (moto_server) / local folder throughput: whole file "
            f"{fmt(figure(downloads.NAME, 's3_over_local'))}, resumed half with Range "
            f"{fmt(figure(downloads.NAME, 's3_over_local_ranged'))} "
            f"({fmt(figure(downloads.NAME, 's3_mb_per_s'), '{:.0f}')} against "
            f"{fmt(figure(downloads.NAME, 'local_mb_per_s'), '{:.0f}')} MB/s; {results[downloads.NAME].size})."
        )
    if runs_at_scale.NAME in results:
        name = runs_at_scale.NAME

        def pair(key: str) -> str:
            pattern = "{:,.0f}"
            return f"{fmt(figure(name, key + '_postgresql'), pattern)} / {fmt(figure(name, key + '_sqlite'), pattern)}"

        lines.append(
            "Runs table (PostgreSQL / SQLite, p50 ms, filtered, sorted and paged by the server): first page "
            f"{pair('first_page_ms')}, filter `{runs_at_scale.ISSUE_FILTER}` {pair('filter_ms')}, sort by a metric "
            f"{pair('sort_ms')}; goal <= {runs_at_scale.GOAL_MS}. Before: the 1,000-run cap filtered in the browser "
            f"{pair('before_ms')} ({results[name].size})."
        )
    if search_runs.NAME in results:
        name = search_runs.NAME

        def servers(key: str) -> str:
            pattern = "{:,.0f}"
            return " / ".join(fmt(figure(name, f"{key}_ms_{server}"), pattern) for server in ("postgresql", "sqlite"))

        lines.append(
            "MLflow search_runs (PruneLab on PostgreSQL / SQLite, p50 ms, first page of "
            f"{search_runs.PAGE}): MlflowClient.search_runs with `{search_runs.MLFLOW_FILTER}` {servers('client')} "
            f"(goal <= {search_runs.GOAL_MS}; MLflow's own server {fmt(figure(name, 'client_ms_mlflow'), '{:,.0f}')}); "
            f"PruneLab's runs query with the same filter {servers('runs_query')} ({results[name].size})."
        )
    if live_streams.NAME in results:
        name = live_streams.NAME
        lines.append(
            f"Live streams (PostgreSQL + Redis): {fmt(figure(name, 'streams'), '{:.0f}')} open streams leave "
            f"GET /api/runs p50 at {fmt(figure(name, 'p50_ratio'), '{:.2f}')}x idle (goal <= "
            f"{live_streams.GOAL_P50_RATIO}) and add {fmt(figure(name, 'extra_commits_per_s'), '{:.2f}')} "
            f"committed transactions per second (idle {fmt(figure(name, 'idle_commits_per_s'), '{:.2f}')}; polling "
            f"made {fmt(2 * (figure(name, 'streams') or 0), '{:.0f}')}) ({results[name].size})."
        )
    if seed_question.NAME in results:
        name = seed_question.NAME
        lines.append(
            "The seed's question (one sweep, ConstantSparsity vs PolynomialDecay at 87.5%): test accuracy "
            f"{fmt(figure(name, 'accuracy_mean_constant'), '{:.2%}')} +- "
            f"{fmt(figure(name, 'accuracy_std_constant'), '{:.2%}')} "
            f"(seed's single run 98.86%) vs {fmt(figure(name, 'accuracy_mean_polynomial'), '{:.2%}')} +- "
            f"{fmt(figure(name, 'accuracy_std_polynomial'), '{:.2%}')} (99.27%); "
            f"{results[name].figures.get('sentence_test_accuracy', 'n/a')} ({results[name].size})."
        )
    if seed_frontier.NAME in results:
        sentences = [value for key, value in results[seed_frontier.NAME].figures.items() if key.startswith("sentence_")]
        lines.append(
            f"The seed's question at other sparsities: {'; '.join(map(str, sentences))} "
            f"({results[seed_frontier.NAME].size})."
        )
    if experiments_at_scale.NAME in results:
        name = experiments_at_scale.NAME

        def dbs(key: str) -> str:
            return " / ".join(fmt(figure(name, f"{key}_ms_{db}"), "{:,.0f}") for db in ("postgresql", "sqlite"))

        goals = experiments_at_scale.GOALS_MS
        lines.append(
            "Experiments at scale (PostgreSQL / SQLite, p50 ms): grouped compare of 40 runs, all keys "
            f"{dbs('grouped_all')} (goal <= {goals['grouped_compare']}; one key {dbs('grouped_one')}; ungrouped "
            f"{dbs('ungrouped')}); a 1,000-point sweep accepted {dbs('sweep_accepted')} and queued "
            f"{dbs('sweep_queued')} (goal <= {goals['sweep_queued']}; one by one {dbs('one_by_one')}); grouped runs "
            f"table {dbs('grouped_table')} (goal <= {goals['grouped_table']}; first page {dbs('first_page')}) "
            f"({results[name].size})."
        )
    if keras3_engine.NAME in results:
        name = keras3_engine.NAME
        figures = results[name].figures
        identity = ", ".join(
            f"{key.removeprefix('identical_')} {value}"
            for key, value in figures.items()
            if key.startswith("identical_") and isinstance(value, str)
        )
        gaps = {key.removeprefix("accuracy_gap_pt_"): value for key, value in figures.items()
                if key.startswith("accuracy_gap_pt_") and isinstance(value, float)}  # fmt: skip
        accuracy = "; ".join(
            f"{cell} {gap:+.2f} pt (n = {fmt(figures.get('n_' + cell), '{:.0f}')})" for cell, gap in gaps.items()
        )
        lines.append(
            "Faithful and fast (Keras 3 engine against tfmot): final weights bit-identical to tfmot's: "
            f"{identity or 'n/a'} "
            f"({fmt(figure(name, 'identity_steps'), '{:.0f}')} steps); per-step time of a pruning run / plain fit "
            f"TensorFlow {fmt(figure(name, 'step_ratio_keras3_tensorflow'))}, JAX "
            f"{fmt(figure(name, 'step_ratio_keras3_jax'))} (goal <= {keras3_engine.GOAL_STEP_RATIO}), against tfmot's "
            f"pruning {fmt(figure(name, 'to_tfmot_keras3_tensorflow'))} / {fmt(figure(name, 'to_tfmot_keras3_jax'))}; "
            f"test accuracy minus tfmot's: {accuracy or 'n/a'} ({results[name].size})."
        )
    return lines


def run_all(
    names: Sequence[str],
    size_name: str,
    log: Callable[[str], None] = print,
    finished: Callable[[Result], None] = lambda result: None,
) -> dict[str, Result]:
    """Run each section in turn; `finished` gets each result as soon as it is measured (a later failure keeps it)."""
    results = {}
    for name in names:
        module = BENCHMARKS[name]
        log(f"[bench] {name} ({size_name}) ...")
        started = time.monotonic()
        result = module.run(module.SIZES[size_name])
        result.elapsed_s = time.monotonic() - started
        results[name] = result
        finished(result)
        log(f"[bench] {name}: {time.monotonic() - started:.0f} s {result.figures}")
    return results


def section_names(text: str) -> list[str]:
    """`--only`'s value: one section or several, comma-separated (`--only ingestion,series`)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown section {', '.join(unknown) or repr(text)}: choose from {', '.join(sorted(BENCHMARKS))}"
        )
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer epochs and smaller data (labelled in the output)")
    parser.add_argument("--size", choices=("tiny", "quick", "full"), help="override the size (tiny: the smoke test's)")
    parser.add_argument(
        "--only",
        action="extend",
        type=section_names,
        help=f"run only these benchmarks (repeat it or separate names by commas): {', '.join(sorted(BENCHMARKS))}",
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md", help="markdown report to write")
    parser.add_argument(
        "--render", action="store_true", help="run nothing: write the report from the stored results (bench/results/)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("PRUNELAB_DATA_DIR", str(shared_data_dir()))
    size_name = args.size or ("quick" if args.quick else "full")
    names = [] if args.render else list(dict.fromkeys(args.only or BENCHMARKS))
    command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    machine = describe()
    started = time.monotonic()
    sources: dict[str, dict[str, str]] = {}

    def keep(result: Result) -> None:
        """Each section is stored when it ends, with the load then: a section failing later loses no other."""
        sources[result.name] = {
            "command": command.strip(),
            "commit": machine["commit"],
            "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "load average at start": machine["load average at start"],
            "load average at end": describe()["load average at start"],
            "machine": machine_line(machine),
        }
        if size_name != "tiny":  # the smoke test's size is never kept
            sections.save(size_name, result, sources[result.name])

    fresh = run_all(names, size_name, finished=keep)
    results = dict(fresh)
    for name in BENCHMARKS:
        if size_name != "tiny" and name not in fresh and (stored := sections.load(size_name, name)) is not None:
            results[name], sources[name] = stored
    ordered = [results[name] for name in BENCHMARKS if name in results]
    out: Path = args.out
    charts = write_charts(list(fresh.values()), out.parent / "benchmarks")
    closing = closing_note(results)
    if fresh:
        closing.append(f"This invocation ran {', '.join(fresh)} in {time.monotonic() - started:.0f} s.")
    else:
        closing.append("This report was rendered from the stored sections (`--render`); it ran none.")
    missing = [name for name in BENCHMARKS if name not in results]
    if missing:
        closing.append(f"Not run at this size yet (no section below): {', '.join(missing)}.")
    mode = {"quick": "QUICK mode: fewer epochs and smaller data", "tiny": "TINY smoke-test size", "full": "full size"}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        render(
            ordered,
            command=command.strip(),
            machine=machine,
            mode=mode[size_name],
            closing=closing,
            chart_paths=charts,
            doc_path=out,
            sources=sources,
        )
    )
    print("\n".join(closing))
    print(f"[bench] wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
