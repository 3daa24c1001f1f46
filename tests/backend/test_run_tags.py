"""Tags and a note per run, validated."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.backend.seed import seeded_run


def test_patch_sets_tags_and_note(client: TestClient) -> None:
    run_id = seeded_run(client)
    response = client.patch(f"/api/runs/{run_id}", json={"tags": ["dense", " best ", "dense"], "note": "baseline"})
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["dense", "best"] and response.json()["note"] == "baseline"
    assert client.patch(f"/api/runs/{run_id}", json={"note": ""}).json()["tags"] == ["dense", "best"]
    assert client.get("/api/runs").json()["runs"][0]["note"] == ""


def test_bad_patches_get_422_or_404(client: TestClient) -> None:
    run_id = seeded_run(client)
    for body in ({"tags": ["a b"]}, {"tags": ["x" * 41]}, {"tags": [str(i) for i in range(21)]}, {"note": "n" * 2001}):
        response = client.patch(f"/api/runs/{run_id}", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["field"].startswith(next(iter(body)))
    assert client.patch(f"/api/runs/{run_id}", json={"status": "succeeded"}).status_code == 422
    assert client.patch("/api/runs/9999", json={"note": "x"}).status_code == 404
