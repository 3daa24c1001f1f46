"""What can be trained: the dataset and model catalog."""

from __future__ import annotations

from fastapi import APIRouter

from backend.architectures import param_counts
from backend.catalog import DATASETS, MODELS
from backend.settings import get_settings

router = APIRouter(prefix="/api", tags=["catalog"])


@router.get("/datasets")
def list_datasets() -> list[dict[str, object]]:
    """Datasets a run can use, and whether each is available without a download."""
    data_dir = get_settings().data_dir
    assert data_dir is not None
    return [
        {
            "name": info.name,
            "description": info.description,
            "train_examples": info.train_examples,
            "test_examples": info.test_examples,
            "input_shape": list(info.input_shape),
            "num_classes": info.num_classes,
            "cached": info.file_name is None or (data_dir / info.file_name).is_file(),
        }
        for info in DATASETS.values()
    ]


@router.get("/models")
def list_models() -> list[dict[str, object]]:
    """Models of the built-in zoo, with parameter counts for each dataset's input shape."""
    return [
        {
            "name": info.name,
            "description": info.description,
            "source": "zoo",
            "param_counts": {
                dataset.name: param_counts(info.name, dataset.input_shape, dataset.num_classes)
                for dataset in DATASETS.values()
            },
        }
        for info in MODELS.values()
    ]
