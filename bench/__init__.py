"""PruneLab's benchmark suite: `python -m bench` (or `make bench`) writes docs/benchmarks.md.

Every figure is a ratio against a reference measured in the same run, so that a
noisy or shared machine shifts both sides alike.
"""

# The headline figures each benchmark must return (checked by tests/bench at the tiny size).
BENCHMARKS_EXPECTED_FIGURES = {
    "training_overhead": ("wall_ratio_postgresql", "fit_ratio_postgresql", "rss_ratio_postgresql"),
    "published_results": ("accuracy_constant-87.5", "zip_ratio_polynomial-87.5", "ptq_ratio_polynomial-90"),
    "compression": ("accuracy_digits_polynomial", "x_smaller_digits_chain"),
    "ingestion": (
        "points_per_s_postgresql",
        "points_per_s_sqlite",
        "logging_fraction_of_step",
        "callback_fraction_of_step",
    ),
    "readback": ("prunelab_load_points_per_s",),
    "series": (
        "compare_after_ms_postgresql",
        "compare_big_ms_sqlite",
        "bytes_per_point_after_postgresql",
        "mix_compare_small_after_quiet_ms_postgresql",
        "mix_compare_small_before_loaded_ms_sqlite",
    ),
    "queue_throughput": (
        "first_step_ms_postgresql",
        "runs_per_minute_1_worker_postgresql",
        "runs_per_minute_2_workers_postgresql",
    ),
    "downloads": ("local_mb_per_s", "s3_mb_per_s", "s3_over_local", "s3_over_local_ranged"),
    "runs_at_scale": ("first_page_ms_postgresql", "filter_ms_sqlite", "sort_ms_postgresql", "before_ms_sqlite"),
    "search_runs": ("client_ms_postgresql", "rest_ms_sqlite", "sort_ms_postgresql", "runs_query_ms_postgresql"),
    "live_streams": ("idle_p50_ms", "streams_p50_ms", "p50_ratio", "open_s"),
    "seed_question": ("accuracy_mean_constant", "accuracy_mean_polynomial", "runs"),
    "seed_frontier": ("runs",),
    "experiments_at_scale": (
        "grouped_all_ms_postgresql",
        "grouped_all_ms_sqlite",
        "sweep_queued_ms_postgresql",
        "sweep_queued_ms_sqlite",
        "grouped_table_ms_postgresql",
        "grouped_table_ms_sqlite",
    ),
    "keras3_engine": (
        "identical_tensors_polynomial",
        "identity_steps",
        "step_ratio_keras3_tensorflow",
        "step_ratio_keras3_jax",
        "to_tfmot_keras3_tensorflow",
        "accuracy_keras3_tensorflow_constant",
        "accuracy_keras3_jax_constant",
        "accuracy_runs",
    ),
}
