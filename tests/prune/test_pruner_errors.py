"""Bad input to the engine's public API: each mistake named, with what to do, before any training."""

from __future__ import annotations

import keras  # Keras 3, on whatever KERAS_BACKEND this process has
import numpy as np
import pytest

from prunelab.core.specs import (
    BlockSparsity,
    ConstantSchedule,
    PiecewiseSchedule,
    PolynomialSchedule,
    Scope,
)
from prunelab.prune import Pruner

CONSTANT = ConstantSchedule(target_sparsity=0.5, begin_step=0, end_step=-1, frequency=1)


def small_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(2, 3, name="conv"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(4, name="classifier"),
        ]
    )


def test_an_unbuilt_model_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not built: give it a keras\.Input"):
        Pruner(keras.Sequential([keras.layers.Dense(3)]), CONSTANT)


def test_a_tf_keras_or_other_object_is_refused() -> None:
    with pytest.raises(TypeError, match=r"expected a Keras 3 keras\.Model"):
        Pruner(object(), CONSTANT)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (PolynomialSchedule(final_sparsity=0.5, begin_step=0, end_step=-1), r"schedule.end_step must be set"),
        (ConstantSchedule(begin_fraction=0.2), r"give begin_step and end_step instead"),
        (PiecewiseSchedule(points=[(0, 0.0), (1.0, 0.5)]), r"points_unit must be 'steps'"),
    ],
)
def test_schedules_that_need_the_runs_step_count_are_refused(schedule, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Pruner(small_model(), schedule)


def test_scope_problems_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"scope.layer_names: the model has no layer named 'nope'"):
        Pruner(small_model(), CONSTANT, scope=Scope(layer_names=["nope"]))
    with pytest.raises(ValueError, match=r"structure.block_size: block sparsity needs 2-D kernels.*'conv'"):
        Pruner(small_model(), CONSTANT, BlockSparsity(block_size=(2, 2)))


def test_state_of_another_model_is_refused() -> None:
    pruner = Pruner(small_model(), CONSTANT, scope=Scope(layer_types=["Dense"]))
    with pytest.raises(ValueError, match=r"missing \['mask/classifier/kernel'\]"):
        pruner.load_state({"step": np.asarray(3), "mask/conv/kernel": np.ones((3, 3, 1, 2), np.float32)})


def test_a_callback_given_to_another_model_is_refused() -> None:
    pruner, other = Pruner(small_model(), CONSTANT), small_model()
    other.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="belongs to another model"):
        other.fit(np.zeros((2, 6, 6, 1)), np.zeros((2, 4)), epochs=1, verbose=0, callbacks=[pruner.callback()])
