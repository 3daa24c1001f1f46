"""A section run alone keeps its result; the report renders it later with where it came from."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench import sections
from bench.report import Result, Table, machine_line, render


def test_a_stored_section_renders_with_its_provenance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sections, "RESULTS", tmp_path)
    result = Result(
        name="series",
        title="7. Metric history store",
        size="20 runs x 20,000 steps",
        tables=[Table("reads", ["read", "p50 ms"], [["compare", 123.4], ["run page", 12]])],
        figures={"compare_after_ms_postgresql": 123.4},
        notes=["a note"],
        elapsed_s=61.0,
    )
    provenance = {
        "command": "python -m bench --only series",
        "commit": "abc1234",
        "finished": "2026-11-30 11:00 UTC",
        "machine": machine_line({"cores": "2", "os": "Linux 6.1", "commit": "abc1234", "load average at start": "1"}),
    }
    sections.save("full", result, provenance)
    older = Result("downloads", "9. Downloads", "1 file", [Table("MB/s", ["store", "MB/s"], [["local", 9.0]])])
    sections.save("full", older, {"command": "python -m bench --only downloads", "commit": "0000aaa"})

    stored = sections.load("full", "series")
    assert stored is not None
    loaded, source = stored
    assert loaded == result and source == provenance
    assert sections.load("full", "readback") is None
    older_stored = sections.load("full", "downloads")
    assert older_stored is not None

    text = render(
        [loaded, older_stored[0]],
        command="python -m bench --render",
        machine={"cores": "4", "os": "Linux 6.2", "commit": "fff0000", "load average at start": "9.99 9.99 9.99"},
        mode="full size",
        closing=[],
        chart_paths=[],
        doc_path=tmp_path / "benchmarks.md",
        sources={"series": source, "downloads": older_stored[1]},
    )
    assert "_Produced by `python -m bench --only series` at commit abc1234, 2026-11-30 11:00 UTC" in text
    assert "| compare | 123.4 |" in text
    footer = next(line for line in text.splitlines() if line.startswith("_Produced by"))
    # The machine the section ran on, as stored with it; not the render's machine, commit or load.
    assert footer.endswith("on cores: 2, os: Linux 6.1._")
    assert "fff0000" not in footer and "9.99" not in footer and "Linux 6.2" not in footer
    # A section stored before machines were kept says so rather than borrow the render's.
    assert "commit 0000aaa" in text and "on a machine not recorded with the section._" in text
    assert "| cores | 4 |" in text  # the render's own machine is the Machine table's


def test_render_writes_every_stored_full_size_section_and_runs_none(tmp_path: Path) -> None:
    """README's `python -m bench --render`, into a scratch file: the committed sections, each with its provenance."""
    from bench.__main__ import BENCHMARKS, main

    out = tmp_path / "benchmarks.md"
    assert main(["--render", "--out", str(out)]) == 0
    text = out.read_text()
    stored = [name for name in BENCHMARKS if sections.load("full", name) is not None]
    assert "compression" in stored  # issue 11's full-size section is committed
    for name in stored:
        result, provenance = sections.load("full", name)  # type: ignore[misc]
        assert f"## {result.title}" in text and provenance["command"] in text, name
    assert "it ran none" in text
    missing = [name for name in BENCHMARKS if name not in stored]
    assert (f"Not run at this size yet (no section below): {', '.join(missing)}." in text) == bool(missing)


def test_only_takes_several_sections_by_commas_or_repeated() -> None:
    from bench.__main__ import section_names

    assert section_names("ingestion,series, runs_at_scale") == ["ingestion", "series", "runs_at_scale"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown section nope: choose from"):
        section_names("ingestion,nope")
