"""The run spec: what a user submits, validated with tfmot's own messages.

Pure pydantic, no database and no TensorFlow: the API validates and resolves a
spec into a `RunPlan`, the worker trains from the stored plan.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from prunelab.core.catalog import DATASETS, MODELS, choices
from prunelab.core.recipes import RECIPE_KINDS, FromScratchRecipe, Recipe


def _check_sparsity(value: float, name: str) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in range [0,1)")
    return value


def plain_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL, and no name or note needs control characters."""
    if any(not character.isprintable() and character not in "\n\t" for character in value):
        raise ValueError("must not contain control characters (such as NUL)")
    return value


# Free text a user stores on a run (its name, note, tags).
PlainText = Annotated[str, AfterValidator(plain_text)]


class _ScheduleBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    begin_step: int = Field(0, description="Step at which pruning begins (tfmot's begin_step).")
    end_step: int = Field(-1, description="Last step at which pruning may happen; -1 means the last step of training.")
    begin_fraction: float | None = Field(
        None,
        description="Begin pruning at this fraction of the run's training steps (0.2: at 20%), instead of begin_step.",
    )
    end_fraction: float | None = Field(
        None,
        description="End pruning at this fraction of the run's training steps (1.0: the last), instead of end_step.",
    )
    frequency: int = Field(100, description="Masks are updated every `frequency` steps within the window.")

    @field_validator("begin_step")
    @classmethod
    def _begin_step(cls, value: int) -> int:
        if value < 0:
            raise ValueError("begin_step should be >= 0")
        return value

    @field_validator("end_step")
    @classmethod
    def _end_step(cls, value: int) -> int:
        if value != -1 and value < 0:
            raise ValueError("end_step can be -1 or >= 0")
        return value

    @field_validator("begin_fraction")
    @classmethod
    def _begin_fraction(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 <= value < 1.0:
            raise ValueError("begin_fraction must be in range [0,1)")
        return value

    @field_validator("end_fraction")
    @classmethod
    def _end_fraction(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 < value <= 1.0:
            raise ValueError("end_fraction must be in range (0,1]")
        return value

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("frequency should be > 0")
        return value

    @model_validator(mode="after")
    def _window(self) -> _ScheduleBase:
        # By value, not by which fields were sent: a stored spec carries the step's default beside the fraction
        # and must validate again to the same spec.
        for unit, default in (("begin", 0), ("end", -1)):
            if getattr(self, f"{unit}_step") != default and getattr(self, f"{unit}_fraction") is not None:
                raise ValueError(f"give {unit}_step or {unit}_fraction, not both")
        fractions = (self.begin_fraction, self.end_fraction)
        if None not in fractions and fractions[0] >= fractions[1]:  # type: ignore[operator]
            raise ValueError(f"begin_fraction ({fractions[0]}) should be < end_fraction ({fractions[1]})")
        if fractions == (None, None) and self.end_step != -1 and self.begin_step >= self.end_step:
            raise ValueError(
                f"begin_step ({self.begin_step}) should be < end_step ({self.end_step}); "
                "use end_step -1 to prune until the last step of training"
            )
        return self

    def uses_fractions(self) -> bool:
        """Whether the window is given as fractions of the run, which only a run's step count resolves."""
        return self.begin_fraction is not None or self.end_fraction is not None


class ConstantSchedule(_ScheduleBase):
    """tfmot `ConstantSparsity`: prune to one sparsity at every pruning step."""

    kind: Literal["constant"] = "constant"
    target_sparsity: float = Field(0.5, description="Fraction of weights set to zero, in [0, 1).")

    @field_validator("target_sparsity")
    @classmethod
    def _target(cls, value: float) -> float:
        return _check_sparsity(value, "target_sparsity")


class PolynomialSchedule(_ScheduleBase):
    """tfmot `PolynomialDecay`: sparsity rises from initial to final along a power curve."""

    kind: Literal["polynomial"] = "polynomial"
    initial_sparsity: float = Field(0.0, description="Sparsity at begin_step, in [0, 1).")
    final_sparsity: float = Field(0.5, description="Sparsity at end_step, in [0, 1).")
    power: float = Field(3, description="Exponent of the decay curve.")

    @field_validator("initial_sparsity")
    @classmethod
    def _initial(cls, value: float) -> float:
        return _check_sparsity(value, "initial_sparsity")

    @field_validator("final_sparsity")
    @classmethod
    def _final(cls, value: float) -> float:
        return _check_sparsity(value, "final_sparsity")

    @field_validator("power")
    @classmethod
    def _power(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError("power must be a positive number")
        return value


class PiecewiseSchedule(_ScheduleBase):
    """Linear interpolation between user-given (step, sparsity) points, pruning every `frequency` steps.

    Before the first point the sparsity is the first point's, after the last the last point's;
    masks are still updated only within [begin_step, end_step].
    """

    kind: Literal["piecewise"] = "piecewise"
    points: list[tuple[float, float]] = Field(
        default_factory=lambda: [(0, 0.0), (1.0, 0.5)],
        description="[[step, sparsity], ...] with strictly increasing steps and sparsities in [0, 1).",
    )
    points_unit: Literal["steps", "fractions"] = Field(
        "fractions",
        description="'steps': point steps are training steps; 'fractions': fractions of the run's training steps.",
    )

    @model_validator(mode="after")
    def _points(self) -> PiecewiseSchedule:
        if len(self.points) < 2:
            raise ValueError("points needs at least two [step, sparsity] points")
        for index, (step, sparsity) in enumerate(self.points):
            _check_sparsity(sparsity, f"points[{index}] sparsity")
            if self.points_unit == "steps" and (step < 0 or step != int(step)):
                raise ValueError(f"points[{index}] step ({step}) should be a whole number >= 0")
            if self.points_unit == "fractions" and not 0.0 <= step <= 1.0:
                raise ValueError(f"points[{index}] step ({step}) must be a fraction in range [0,1]")
            if index and step <= self.points[index - 1][0]:
                raise ValueError(
                    f"points steps should be strictly increasing: points[{index}] ({step}) "
                    f"is not after points[{index - 1}] ({self.points[index - 1][0]})"
                )
        return self


Schedule = Annotated[ConstantSchedule | PolynomialSchedule | PiecewiseSchedule, Field(discriminator="kind")]
# A schedule whose steps have been resolved to integers (end_step never -1, no fractions).
ResolvedSchedule = ConstantSchedule | PolynomialSchedule | PiecewiseSchedule
SCHEDULE_KINDS = ("constant", "polynomial", "piecewise")


class UnstructuredSparsity(BaseModel):
    """Any weight may be pruned (tfmot's default)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["unstructured"] = "unstructured"


class BlockSparsity(BaseModel):
    """tfmot block sparsity: whole (h, w) blocks of 2-D kernels are pruned together, ranked by pooled magnitude."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["block"] = "block"
    block_size: tuple[int, int] = Field((1, 4), description="Block (height, width) in a 2-D kernel.")
    block_pooling_type: Literal["AVG", "MAX"] = Field("AVG", description="How a block's magnitudes are pooled.")

    @field_validator("block_size")
    @classmethod
    def _block_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1:
            raise ValueError("block_size dimensions should be >= 1")
        return value


class MByNSparsity(BaseModel):
    """tfmot `sparsity_m_by_n`: m zeros in every n consecutive weights (2:4), set once at step 1."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["m_by_n"] = "m_by_n"
    m: int = Field(2, description="Zeros in every group of n consecutive weights (tfmot's m).")
    n: int = Field(4, description="Group size along the kernel's input dimension.")

    @model_validator(mode="after")
    def _m_below_n(self) -> MByNSparsity:
        if not 1 <= self.m < self.n:
            raise ValueError(f"m_by_n needs 1 <= m < n; got m={self.m}, n={self.n}")
        return self

    @property
    def target_sparsity(self) -> float:
        return self.m / self.n


Structure = Annotated[UnstructuredSparsity | BlockSparsity | MByNSparsity, Field(discriminator="kind")]
STRUCTURE_KINDS = ("unstructured", "block", "m_by_n")


class Scope(BaseModel):
    """Which layers are pruned: prunable layers that pass both filters, minus kept-dense ends."""

    model_config = ConfigDict(extra="forbid")
    layer_types: list[str] | None = Field(
        None, description="Only layers of these classes (e.g. ['Dense']); null: every prunable class."
    )
    layer_names: list[str] | None = Field(None, description="Only layers with these names; null: every layer.")
    keep_first_dense: bool = Field(False, description="Leave the first prunable layer dense.")
    keep_last_dense: bool = Field(False, description="Leave the last prunable layer (the classifier) dense.")


class ClusterStage(BaseModel):
    """tfmot `cluster_weights`: each prunable kernel keeps `number_of_clusters` shared values, then fine-tunes."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["cluster"] = "cluster"
    number_of_clusters: int = Field(16, description="Shared values per kernel (tfmot's number_of_clusters).")
    centroid_init: Literal["linear", "kmeans_plus_plus", "density_based", "random"] = Field(
        "kmeans_plus_plus", description="tfmot's CentroidInitialization: how the shared values start."
    )
    preserve_sparsity: bool = Field(
        True, description="Keep every pruned zero at zero (sparsity-preserving clustering)."
    )
    epochs: int = Field(2, ge=0, le=1000, description="Fine-tuning epochs with the clusters in place.")
    learning_rate: float = Field(1e-5, gt=0, le=10, description="Fine-tuning learning rate (Adam).")

    @field_validator("number_of_clusters")
    @classmethod
    def _clusters(cls, value: int) -> int:
        if not 2 <= value <= 256:
            raise ValueError("number_of_clusters should be in range [2, 256] (an int8 kernel holds 256 values)")
        return value


class QatStage(BaseModel):
    """Quantization-aware training: tfmot's default 8-bit scheme, or its collaborative schemes.

    pqat: `Default8BitPrunePreserveQuantizeScheme` (keeps the zeros); pcqat:
    `Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)` (keeps the zeros and the clusters).
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["qat"] = "qat"
    scheme: Literal["default", "pqat", "pcqat"] = Field(
        "pqat", description="default, pqat (prune-preserving) or pcqat (sparsity- and cluster-preserving)."
    )
    epochs: int = Field(2, ge=0, le=1000, description="Quantization-aware fine-tuning epochs.")
    learning_rate: float = Field(1e-5, gt=0, le=10, description="Fine-tuning learning rate (Adam).")


class TfliteInt8Stage(BaseModel):
    """Full-integer TFLite conversion calibrated on a representative set of training images."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["tflite_int8"] = "tflite_int8"
    calibration_examples: int = Field(100, ge=1, le=10000, description="Training images in the representative dataset.")


CompressStage = Annotated[ClusterStage | QatStage | TfliteInt8Stage, Field(discriminator="kind")]
COMPRESS_KINDS = ("cluster", "qat", "tflite_int8")


def check_compress_order(stages: list[ClusterStage | QatStage | TfliteInt8Stage]) -> None:
    """Raise ValueError unless the stages are in an order tfmot supports: cluster, then qat, then tflite_int8."""
    seen: dict[str, int] = {}
    for index, stage in enumerate(stages):
        where = f"compress[{index}] ({stage.kind})"
        if stage.kind in seen:
            raise ValueError(f"{where} repeats compress[{seen[stage.kind]}]; give each stage at most once")
        for later in COMPRESS_KINDS[COMPRESS_KINDS.index(stage.kind) + 1 :]:
            if later in seen:
                raise ValueError(
                    f"{where} comes after compress[{seen[later]}] ({later}); tfmot's order is "
                    f"{' -> '.join(COMPRESS_KINDS)}: move {stage.kind} before {later}"
                )
        if isinstance(stage, QatStage):
            clustered = "cluster" in seen
            if stage.scheme == "pcqat" and not clustered:
                raise ValueError(
                    f"{where}: scheme pcqat preserves clusters, and no cluster stage comes before it; "
                    "add a cluster stage before qat, or use scheme pqat"
                )
            if stage.scheme != "pcqat" and clustered:
                raise ValueError(
                    f"{where}: scheme {stage.scheme} would undo the clusters of compress[{seen['cluster']}]; "
                    "use scheme pcqat after a cluster stage"
                )
        seen[stage.kind] = index


# A discriminated union puts the tag ("constant") into an error's location; users name the field.
UNION_TAGS = frozenset(SCHEDULE_KINDS + STRUCTURE_KINDS + RECIPE_KINDS + COMPRESS_KINDS)

EXPORT_KINDS = ("keras", "h5", "saved_model", "tflite", "tflite_int8")
ExportKind = Literal["keras", "h5", "saved_model", "tflite", "tflite_int8"]
DEFAULT_EXPORTS: tuple[ExportKind, ...] = ("keras", "h5", "tflite", "tflite_int8")

# The training engines: tfmot on tf-keras (Keras 2, TensorFlow only), or PruneLab's own on Keras 3 (any backend).
ENGINES = ("tfmot", "keras")
KERAS_BACKENDS = ("tensorflow", "jax", "torch")
# The package a worker needs for each Keras backend (beside `keras` itself), and what to install there for it:
# workers record the backends they can run (worker/presence.py), and the API refuses one no live worker offers.
KERAS_BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
KERAS_BACKEND_INSTALL = {
    "tensorflow": "pip install 'prunelab[worker,keras3]'",
    "jax": "pip install 'prunelab[worker,keras3]'",
    "torch": "pip install 'prunelab[worker,keras3]' torch (PyTorch's CPU or CUDA build)",
}
# What a Keras 3 run can make: its own .keras and LiteRT exports (prunelab.keras3_export), no tf-keras file.
KERAS_ENGINE_EXPORTS: tuple[ExportKind, ...] = ("keras", "tflite", "tflite_int8")
KERAS_ENGINE_RECIPES = ("from_scratch", "dense", "uploaded_model")


class RunSpec(BaseModel):
    """A pruning run as submitted: data, model, training settings and schedule."""

    model_config = ConfigDict(extra="forbid")

    name: PlainText = Field(
        "",
        max_length=200,
        description="Free text; defaults to a name built from the spec.",
        json_schema_extra={"group": "data/model"},
    )
    dataset: str = Field(
        "digits", description="A dataset from GET /api/datasets.", json_schema_extra={"group": "data/model"}
    )
    model: str = Field("mlp", description="A model from GET /api/models.", json_schema_extra={"group": "data/model"})
    engine: Literal["tfmot", "keras"] = Field(
        "tfmot",
        description="tfmot: tfmot on tf-keras (Keras 2, TensorFlow). keras: PruneLab's own engine on Keras 3 "
        "(prunelab.prune, tfmot's rules), on the backend below; exports keras, tflite and tflite_int8.",
        json_schema_extra={"group": "engine"},
    )
    backend: Literal["tensorflow", "jax", "torch"] | None = Field(
        None,
        description="The Keras 3 backend a keras-engine run trains on; null means tensorflow. The tfmot engine "
        "runs on tf-keras (TensorFlow) only.",
        json_schema_extra={"group": "engine"},
    )
    epochs: int = Field(5, ge=1, le=1000, json_schema_extra={"group": "training"})
    batch_size: int = Field(32, ge=1, le=65536, json_schema_extra={"group": "training"})
    learning_rate: float = Field(1e-3, gt=0, le=10, json_schema_extra={"group": "training"})
    validation_split: float = Field(0.1, ge=0, lt=1, json_schema_extra={"group": "training"})
    seed: int = Field(0, ge=0, le=2**31 - 1, json_schema_extra={"group": "training"})
    schedule: Schedule = Field(default_factory=PolynomialSchedule, json_schema_extra={"group": "schedule"})
    structure: Structure = Field(
        default_factory=UnstructuredSparsity,
        description="Sparsity pattern: unstructured, block (2-D kernels only) or m_by_n (2:4).",
        json_schema_extra={"group": "structure"},
    )
    scope: Scope = Field(
        default_factory=Scope,
        description="Which layers are pruned; layers tfmot cannot prune are reported in the coverage report.",
        json_schema_extra={"group": "structure"},
    )
    layer_targets: dict[str, float] | None = Field(
        None,
        description="Per-layer final sparsity {layer: sparsity}: each named layer gets the schedule's kind with its "
        "final sparsity replaced by this value; other layers follow the schedule.",
        json_schema_extra={"group": "structure"},
    )
    recipe: Recipe = Field(
        default=FromScratchRecipe(),  # a plain default, so the JSON schema (and the form) shows it
        description="Where the starting weights come from and what the run does: from_scratch, dense, pretrained, "
        "uploaded_model, lottery_ticket or sensitivity.",
        json_schema_extra={"group": "recipe"},
    )
    exports: list[ExportKind] = Field(
        default=list(DEFAULT_EXPORTS),  # a plain default, so the JSON schema (and the form) shows it
        description="Model files to export; saved_model is off by default (the slowest to write).",
        json_schema_extra={"group": "export"},
    )
    compress: list[CompressStage] = Field(
        # A default in the schema (not a factory): the generated form fills the field with it.
        default=[],
        description="Compression after pruning, in tfmot's order: cluster (weight clustering), qat "
        "(quantization-aware training: default, pqat or pcqat), tflite_int8 (full-integer TFLite). Each "
        "training stage fine-tunes as its own phase on the run's step axis and is exported and measured.",
        json_schema_extra={"group": "compress"},
    )
    int8_quantization: Literal["dynamic_range", "full_integer"] = Field(
        "dynamic_range",
        description="tflite_int8: dynamic-range weights, or full integer calibrated on training examples.",
        json_schema_extra={"group": "export"},
    )

    @model_validator(mode="before")
    @classmethod
    def _engine_defaults(cls, data: object) -> object:
        # A keras-engine run that names no exports gets what that engine makes (no tf-keras .h5).
        if isinstance(data, dict) and data.get("engine") == "keras" and "exports" not in data:
            return {**data, "exports": list(KERAS_ENGINE_EXPORTS)}
        return data

    @field_validator("backend")
    @classmethod
    def _backend(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("engine") == "tfmot" and value not in (None, "tensorflow"):
            raise ValueError(
                f"backend {value!r}: the tfmot engine runs on tf-keras (TensorFlow) only; "
                'set "engine": "keras" to train on another Keras backend, or leave backend null'
            )
        return value

    @field_validator("recipe")
    @classmethod
    def _keras_engine_recipe(cls, value: Recipe, info: ValidationInfo) -> Recipe:
        if info.data.get("engine") == "keras" and value.kind not in KERAS_ENGINE_RECIPES:
            raise ValueError(
                f"recipe {value.kind}: the keras engine runs the {', '.join(KERAS_ENGINE_RECIPES)} recipes; "
                'use "engine": "tfmot" for this one'
            )
        return value

    @property
    def keras_backend(self) -> str:
        """The Keras backend the run trains on (tensorflow for tfmot runs and for a keras run with no backend)."""
        return self.backend or "tensorflow"

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        if value not in DATASETS:
            raise ValueError(f"unknown dataset {value!r}; choose one of: {choices(DATASETS)}")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if value not in MODELS:
            raise ValueError(f"unknown model {value!r}; choose one of: {choices(MODELS)}")
        return value

    @field_validator("layer_targets")
    @classmethod
    def _layer_targets(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for name, sparsity in (value or {}).items():
            _check_sparsity(sparsity, f"layer_targets[{name!r}]")
        return value

    @field_validator("exports")
    @classmethod
    def _exports(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not value:
            raise ValueError(f"exports needs at least one format; choose from: {', '.join(EXPORT_KINDS)}")
        refused = [name for name in value if name not in KERAS_ENGINE_EXPORTS]
        if info.data.get("engine") == "keras" and refused:
            raise ValueError(
                f"{', '.join(refused)}: the keras engine exports {', '.join(KERAS_ENGINE_EXPORTS)} only "
                '(h5 and saved_model are tf-keras files); remove them, or use "engine": "tfmot"'
            )
        return sorted(set(value), key=EXPORT_KINDS.index)

    @field_validator("compress")
    @classmethod
    def _compress(cls, value: list[ClusterStage | QatStage | TfliteInt8Stage], info: ValidationInfo) -> list:  # type: ignore[type-arg]
        if info.data.get("engine") == "keras" and value:
            raise ValueError(
                f"{', '.join(stage.kind for stage in value)}: compress stages need the tfmot engine (clustering and "
                'quantization-aware training are tfmot\'s, on tf-keras); remove them, or use "engine": "tfmot"'
            )
        check_compress_order(value)
        return value

    @field_validator("int8_quantization")
    @classmethod
    def _int8(cls, value: str, info: ValidationInfo) -> str:
        if (
            info.data.get("engine") == "keras"
            and value != "dynamic_range"
            and "tflite_int8" in info.data.get("exports", ())
        ):
            raise ValueError(
                "full_integer: the keras engine's tflite_int8 is Keras 3's dynamic-range LiteRT export; "
                'use dynamic_range, or "engine": "tfmot"'
            )
        return value

    def display_name(self) -> str:
        if self.name:
            return self.name
        model = f"upload {self.recipe.upload_id}" if self.recipe.kind == "uploaded_model" else self.model
        if self.recipe.kind in ("dense", "sensitivity"):
            return f"{self.recipe.kind} {model} on {self.dataset}"
        if self.recipe.kind != "from_scratch":
            return f"{self.recipe.kind.replace('_', ' ')} {self.schedule.kind} {model} on {self.dataset}"
        return f"{self.schedule.kind} {model} on {self.dataset}"
