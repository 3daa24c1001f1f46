"""Request and response bodies of MLflow's tracking API (mlflow/protos/service.proto), the fields PruneLab reads.

Unknown fields are ignored, as MLflow's server ignores them: clients send `run_uuid` beside
`run_id`, and newer clients add fields (`model_id`, `dataset_name`) this subset does not store.
Metric values may be JSON numbers or the strings "NaN", "Infinity" and "-Infinity" (protobuf's
JSON mapping); PruneLab stores a non-finite value as a gap and serves it back as "NaN".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prunelab.core.specs import plain_text

# mlflow/utils/validation.py
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_ENTITY_KEY_LENGTH = 250
MAX_RESULTS_DEFAULT = 1000  # mlflow/store/tracking SEARCH_MAX_RESULTS_DEFAULT
MAX_RESULTS_THRESHOLD = 50000  # SEARCH_MAX_RESULTS_THRESHOLD
MAX_RUNS_PER_BULK_INTERVAL = 100  # handlers.MAX_RUNS_GET_METRIC_HISTORY_BULK
MAX_RESULTS_PER_RUN = 2500  # handlers.MAX_RESULTS_PER_RUN

RunStatusName = Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
ViewType = Literal["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @field_validator("*")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        # Run names become PruneLab names (core.specs.PlainText), so every text field follows its rule: refused
        # here as INVALID_PARAMETER_VALUE, never a database or validation error later.
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                plain_text(text)
        return value


class KeyValue(Message):
    key: str
    value: str = ""


class MetricIn(Message):
    key: str
    value: float | str
    timestamp: int
    step: int = 0


class CreateExperiment(Message):
    name: str
    artifact_location: str = ""
    tags: list[KeyValue] = Field(default_factory=list)


class SearchExperiments(Message):
    max_results: int = Field(MAX_RESULTS_DEFAULT, ge=1, le=MAX_RESULTS_THRESHOLD)
    page_token: str | None = None
    filter: str = ""
    order_by: list[str] = Field(default_factory=list)
    view_type: ViewType = "ACTIVE_ONLY"


class CreateRun(Message):
    experiment_id: str = "0"
    user_id: str = ""
    run_name: str = ""
    start_time: int | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class RunRef(Message):
    run_id: str | None = None
    run_uuid: str | None = None

    def ref(self) -> str:
        return self.run_id or self.run_uuid or ""


class UpdateRun(RunRef):
    status: RunStatusName | None = None
    end_time: int | None = None
    run_name: str | None = None


class SearchRuns(Message):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str = ""
    run_view_type: ViewType = "ACTIVE_ONLY"
    max_results: int = Field(MAX_RESULTS_DEFAULT, ge=1, le=MAX_RESULTS_THRESHOLD)
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


class LogMetric(RunRef, MetricIn):
    pass


class LogParam(RunRef, KeyValue):
    pass


class SetTag(RunRef, KeyValue):
    pass


class LogBatch(RunRef):
    metrics: list[MetricIn] = Field(default_factory=list)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


# Responses are plain dicts shaped as MLflow's protobuf JSON: unset fields are left out, as MLflow leaves them.
Json = dict[str, Any]


class MlflowErrorOut(BaseModel):
    """MLflow's error shape: `{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}`."""

    error_code: str
    message: str
