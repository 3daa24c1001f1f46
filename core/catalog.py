"""What PruneLab can train: datasets and models, described without TensorFlow.

The API validates specs and resolves step counts from these facts; the worker's
training library builds the real thing and a test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    train_examples: int
    test_examples: int
    input_shape: tuple[int, ...]
    num_classes: int
    file_name: str | None  # the .npz looked for in PRUNELAB_DATA_DIR; None when bundled


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    min_input_size: int = 1  # the smallest image side the model builds for ('valid' layers shrink it)


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="digits",
            description="scikit-learn's bundled 8x8 handwritten digits (offline, 1,797 images)",
            train_examples=1437,
            test_examples=360,
            input_shape=(8, 8, 1),
            num_classes=10,
            file_name=None,
        ),
        DatasetInfo(
            name="mnist",
            description="MNIST 28x28 handwritten digits (downloaded once through Keras)",
            train_examples=60000,
            test_examples=10000,
            input_shape=(28, 28, 1),
            num_classes=10,
            file_name="mnist.npz",
        ),
        DatasetInfo(
            name="fashion_mnist",
            description="Fashion-MNIST 28x28 clothing images (downloaded once through Keras)",
            train_examples=60000,
            test_examples=10000,
            input_shape=(28, 28, 1),
            num_classes=10,
            file_name="fashion_mnist.npz",
        ),
        DatasetInfo(
            name="cifar10",
            description="CIFAR-10 32x32 colour images (downloaded once through Keras)",
            train_examples=50000,
            test_examples=10000,
            input_shape=(32, 32, 3),
            num_classes=10,
            file_name="cifar10.npz",
        ),
    )
}

MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        ModelInfo(
            name="mnist_cnn",
            description="CNN of the tfmot tutorials: Conv32-Pool-Conv64-Pool-Flatten-Dense256-Dense10",
        ),
        ModelInfo(name="mlp", description="Small fully connected network: Flatten-Dense128-Dense10"),
        ModelInfo(
            name="tutorial_cnn",
            description="The 20,410-parameter MNIST model of tfmot's 'Pruning in Keras' tutorial: "
            "Conv12(3x3, valid)-Pool-Flatten-Dense10",
        ),
        ModelInfo(
            name="tutorial_mnist_cnn",
            description="The 431,242-parameter MNIST CNN of the seeds' tfmot schedules comparison: "
            "Conv32(3x3, valid)-Pool-Conv64(3x3, valid)-Pool-Flatten-Dense256-Dense10 (images of 10x10 or more)",
            min_input_size=10,
        ),
        ModelInfo(
            name="mobilenet_tiny",
            description="MobileNet-style CNN for cifar10: Conv16/2-BN-ReLU, two depthwise-separable blocks "
            "(DepthwiseConv-BN-ReLU-Conv1x1-BN-ReLU; 32 and 64 channels, the second strided), GAP, Dense10",
        ),
    )
}


def choices(names: Mapping[str, object]) -> str:
    return ", ".join(sorted(names))
