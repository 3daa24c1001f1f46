"""Series replies: the typed-columns form carries what the JSON form does, ETags revalidate, and the LRU of
finished runs' reduced series never serves a series that changed (PostgreSQL and SQLite)."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
from fastapi.testclient import TestClient

from prunelab.server.metrics.compaction import compact_run
from prunelab.server.metrics.replies import COLUMNS_MEDIA_TYPE
from tests.backend.seed import seeded_run
from tests.backend.test_series_store import log_steps

COLUMNS = {"accept": COLUMNS_MEDIA_TYPE}


def decode_columns(body: bytes) -> Any:
    """What the dashboard's decodeColumns (frontend/js/common.js) does, with numpy: series as plain lists."""
    (length,) = struct.unpack_from("<I", body)
    start = -(-(4 + length) // 8) * 8

    def column(described: list[Any], count: int) -> np.ndarray:
        dtype, offset = described[0], described[1]
        assert offset % 8 == 0  # a typed array needs its element's alignment
        return np.frombuffer(body, dtype=np.dtype(dtype).newbyteorder("<"), count=count, offset=start + offset)

    def walk(value: Any) -> Any:
        if isinstance(value, dict) and "columns" in value:
            count = value["columns"]
            values = column(value["values"], count).astype(np.float64)
            return {
                "steps": column(value["steps"], count).tolist(),
                "values": [None if np.isnan(v) else float(v) for v in values],
                "values_type": value["values"][0],
                "wall_times": (value["wall_times"][2] + column(value["wall_times"], count).astype(np.float64)).tolist(),
            }
        if isinstance(value, dict):
            return {key: walk(inner) for key, inner in value.items()}
        return [walk(inner) for inner in value] if isinstance(value, list) else value

    return walk(orjson.loads(body[4 : 4 + length]))


def assert_same_series(columns: dict[str, Any], json: dict[str, Any]) -> None:
    assert columns.keys() == json.keys()
    for key, series in json.items():
        assert columns[key]["steps"] == series["steps"], key
        # A float32 series prints in float32's shortest form in JSON: the same float32 as the column holds.
        width = np.dtype(columns[key]["values_type"]).type
        assert columns[key]["values"] == [None if v is None else float(width(v)) for v in series["values"]], key
        assert np.allclose(columns[key]["wall_times"], series["wall_times"], rtol=0, atol=1e-3), key


def test_columns_carry_what_json_does_on_a_run_page_and_a_comparison(client: TestClient) -> None:
    first, second = seeded_run(client, steps=2), seeded_run(client, steps=2)
    log_steps(first, range(1, 6001))
    compact_run(first)
    log_steps(first, range(5001, 7001), offset=1.0)  # late hot rows beside the chunks: both tiers in one reply
    log_steps(second, range(1, 301))
    url = f"/api/runs/{first}/metrics"
    for params in ({"max_points": 400}, {}, {"start_step": 2000, "end_step": 2999, "max_points": 400}):
        json_reply = client.get(url, params=params)
        columns_reply = client.get(url, params=params, headers=COLUMNS)
        assert json_reply.headers["content-type"] == "application/json"
        assert columns_reply.headers["content-type"] == COLUMNS_MEDIA_TYPE
        decoded = decode_columns(columns_reply.content)
        assert decoded["run_id"] == first
        assert_same_series(decoded["series"], json_reply.json()["series"])
        assert None in json_reply.json()["series"]["noisy_loss"]["values"] or "start_step" in params  # gaps kept
    params = {"runs": f"{first},{second}", "keys": "noisy_loss,layer_sparsity/dense", "max_points": 300}
    json_body = client.get("/api/compare", params=params).json()
    decoded = decode_columns(client.get("/api/compare", params=params, headers=COLUMNS).content)
    assert {key: value for key, value in decoded.items() if key != "series"} == {
        key: value for key, value in json_body.items() if key != "series"
    }
    for run_id in (first, second):
        assert_same_series(decoded["series"][str(run_id)], json_body["series"][str(run_id)])


def test_an_unchanged_reply_is_a_304_and_a_changed_one_is_not(client: TestClient) -> None:
    run_id = seeded_run(client, steps=2)
    log_steps(run_id, range(1, 2001))
    url = f"/api/runs/{run_id}/metrics"
    for headers in ({}, COLUMNS):
        reply = client.get(url, params={"max_points": 200}, headers=headers)
        etag = reply.headers["etag"]
        assert reply.headers["cache-control"] == "no-cache" and "Accept" in reply.headers["vary"]
        again = client.get(url, params={"max_points": 200}, headers={**headers, "if-none-match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        other = client.get(url, params={"max_points": 300}, headers={**headers, "if-none-match": etag})
        assert other.status_code == 200 and other.headers["etag"] != etag
    json_etag = client.get(url, params={"max_points": 200}).headers["etag"]
    assert client.get(url, params={"max_points": 200}, headers=COLUMNS).headers["etag"] != json_etag
    log_steps(run_id, range(2001, 2101))  # the run grew: the same request is a new reply
    grown = client.get(url, params={"max_points": 200}, headers={"if-none-match": json_etag})
    assert grown.status_code == 200 and grown.json()["series"]["noisy_loss"]["steps"][-1] == 2100


def test_the_cache_of_finished_series_never_serves_a_stale_one(client: TestClient) -> None:
    run_id = seeded_run(client, steps=2)
    log_steps(run_id, range(1, 5001))
    compact_run(run_id)
    url = f"/api/runs/{run_id}/metrics"
    params = {"keys": "noisy_loss", "max_points": 300}
    first = client.get(url, params=params).json()["series"]["noisy_loss"]
    assert client.get(url, params=params).json()["series"]["noisy_loss"] == first  # a cached read: the same
    log_steps(run_id, range(5001, 6001), ("noisy_loss",), offset=5.0)  # late rows: hot beside the cached chunks
    live = client.get(url, params=params).json()["series"]["noisy_loss"]
    assert live["steps"][-1] == 6000 and max(v for v in live["values"] if v is not None) > 5.0
    compact_run(run_id)  # the series is rewritten whole: a new identity, not the cached one
    compacted = client.get(url, params=params).json()["series"]["noisy_loss"]
    assert compacted["steps"][-1] == 6000 and max(v for v in compacted["values"] if v is not None) > 5.0
    window = client.get(url, params={**params, "start_step": 100, "end_step": 199}).json()["series"]["noisy_loss"]
    assert window["steps"] == list(range(100, 200))  # a window is its own entry, not the whole series'


def test_a_missing_run_is_a_404_in_either_form(client: TestClient) -> None:
    for headers in ({}, COLUMNS):
        reply = client.get("/api/runs/999999/metrics", params={"max_points": 200}, headers=headers)
        assert reply.status_code == 404 and "999999" in reply.text
