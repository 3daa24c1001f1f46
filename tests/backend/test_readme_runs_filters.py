"""Every `GET /api/runs` example README.md shows runs against the API, and answers what README says it answers."""

from __future__ import annotations

import json
import re
import shlex

from fastapi.testclient import TestClient

from harness.seed_runs import insert_runs
from harness.stack import REPO

README = (REPO / "README.md").read_text()
# `curl -s -G http://127.0.0.1:8000/api/runs <options>`, and the `# -> 422 {...}` line after it, if any.
EXAMPLE = re.compile(r"^curl -s -G http://127\.0\.0\.1:8000/api/runs (.+)\n(?:# -> (\d{3}) (\{.*\}))?", re.M)


def readme_examples() -> list[tuple[dict[str, str], int, str | None]]:
    examples = []
    for options, status, body in EXAMPLE.findall(README):
        words = shlex.split(options)
        params = dict(word.split("=", 1) for flag, word in zip(words[::2], words[1::2], strict=True))
        expected_message = json.loads(body.replace(", ...}", "}"))["detail"][0]["msg"] if body else None
        examples.append((params, int(status or 200), expected_message))
    return examples


def test_readme_shows_list_examples() -> None:
    assert len(readme_examples()) == README.count("curl -s -G http://127.0.0.1:8000/api/runs") >= 5


def test_every_readme_runs_query_answers_as_shown(client: TestClient) -> None:
    insert_runs(30, seed=3)
    for params, status, message in readme_examples():
        response = client.get("/api/runs", params=params)
        assert response.status_code == status, (params, response.text)
        if message is None:
            assert set(response.json()) == {"runs", "next_cursor", "total"}
        else:
            assert response.json()["detail"][0]["msg"] == message
