"""tfmot schedule objects for resolved specs, and PruneLab's own piecewise-linear schedule."""

from __future__ import annotations

from collections.abc import Sequence

from prunelab.core.specs import ConstantSchedule, PiecewiseSchedule, PolynomialSchedule, ResolvedSchedule
from prunelab.worker.training.tf import keras, tf, tfmot


@keras.utils.register_keras_serializable(package="prunelab")
class PiecewiseSparsity(tfmot.sparsity.keras.PruningSchedule):
    """Sparsity interpolated linearly between (step, sparsity) points, pruning every `frequency` steps.

    Before the first point the sparsity is the first point's, from the last point on the last's.
    Masks are updated where tfmot's own schedules update them: every `frequency` steps in
    [begin_step, end_step]. `core.schedule_math` mirrors the arithmetic bit for bit.
    """

    def __init__(
        self,
        points: Sequence[Sequence[float]],
        begin_step: int = 0,
        end_step: int = -1,
        frequency: int = 100,
    ) -> None:
        self.points = [(int(step), float(sparsity)) for step, sparsity in points]
        self.begin_step = begin_step
        self.end_step = end_step
        self.frequency = frequency
        self._validate_step(begin_step, end_step, frequency, allow_negative_1=True)
        if len(self.points) < 2:
            raise ValueError("points needs at least two (step, sparsity) points")
        for index, (step, sparsity) in enumerate(self.points):
            self._validate_sparsity(sparsity, f"points[{index}] sparsity")
            if step < 0:
                raise ValueError(f"points[{index}] step should be >= 0")
            if index and step <= self.points[index - 1][0]:
                raise ValueError("points steps should be strictly increasing")

    def __call__(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        step = tf.cast(step, tf.int64)
        steps = tf.constant([point_step for point_step, _ in self.points], dtype=tf.int64)
        values = tf.constant([sparsity for _, sparsity in self.points], dtype=tf.float32)
        at_or_before = tf.reduce_sum(tf.cast(steps <= step, tf.int64))
        index = tf.clip_by_value(at_or_before - 1, 0, len(self.points) - 2)
        start_step, stop_step = tf.gather(steps, index), tf.gather(steps, index + 1)
        start_value, stop_value = tf.gather(values, index), tf.gather(values, index + 1)
        progress = tf.cast(step - start_step, tf.float32) / tf.cast(stop_step - start_step, tf.float32)
        progress = tf.clip_by_value(progress, 0.0, 1.0)
        interpolated = start_value + (stop_value - start_value) * progress
        sparsity = tf.where(step >= steps[-1], values[-1], interpolated)
        return self._should_prune_in_step(step, self.begin_step, self.end_step, self.frequency), sparsity

    def get_config(self) -> dict[str, object]:
        return {
            "class_name": self.__class__.__name__,
            "config": {
                "points": [list(point) for point in self.points],
                "begin_step": self.begin_step,
                "end_step": self.end_step,
                "frequency": self.frequency,
            },
        }


def tfmot_schedule(schedule: ResolvedSchedule) -> tfmot.sparsity.keras.PruningSchedule:
    """The tfmot schedule object for a resolved schedule."""
    if isinstance(schedule, ConstantSchedule):
        return tfmot.sparsity.keras.ConstantSparsity(
            schedule.target_sparsity, schedule.begin_step, schedule.end_step, schedule.frequency
        )
    if isinstance(schedule, PolynomialSchedule):
        return tfmot.sparsity.keras.PolynomialDecay(
            schedule.initial_sparsity,
            schedule.final_sparsity,
            schedule.begin_step,
            schedule.end_step,
            power=schedule.power,
            frequency=schedule.frequency,
        )
    if isinstance(schedule, PiecewiseSchedule):
        return PiecewiseSparsity(schedule.points, schedule.begin_step, schedule.end_step, schedule.frequency)
    raise TypeError(f"unknown schedule kind: {schedule!r}")
