"""Each benchmark's last result at each size, kept in `bench/results/<size>/<name>.json` (committed).

A full `make bench` takes over an hour on two cores, so a section can be re-run alone
(`python -m bench --only NAME`) and the report is rendered from every section's latest stored result.
Each section carries the command, commit, date and load it ran under, and its ratios come from the same run.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.report import Result, Table

RESULTS = Path(__file__).resolve().parent / "results"


def _path(size_name: str, name: str) -> Path:
    return RESULTS / size_name / f"{name}.json"


def save(size_name: str, result: Result, provenance: dict[str, str]) -> Path:
    """Store one section's result (without its charts, which are regenerated files) and where it came from."""
    payload = asdict(result)
    payload.pop("charts")
    payload["provenance"] = provenance
    path = _path(size_name, result.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return path


def load(size_name: str, name: str) -> tuple[Result, dict[str, str]] | None:
    """A stored section, or None when it never ran at this size."""
    path = _path(size_name, name)
    if not path.is_file():
        return None
    payload: dict[str, Any] = json.loads(path.read_text())
    provenance = payload.pop("provenance", {})
    tables = [Table(**table) for table in payload.pop("tables")]
    return Result(tables=tables, **payload), provenance
