"""Resumable, verified downloads of a run's files: `<file>.part` first, `Range` + `If-Range` to resume, the
sha256 checked against the run's artifacts list before the file gets its name."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import httpx

from prunelab._http import Http
from prunelab.core.exports import EXPORT_FORMATS, RUN_FILE_FORMATS
from prunelab.errors import ChecksumMismatch, PruneLabError
from prunelab.models import Download, Run
from prunelab.progress import byte_bar

# Model formats, and the files describing a model that are served as files (masks are served as pictures).
DOWNLOAD_FORMATS: dict[str, str] = {
    **EXPORT_FORMATS,
    **{name: suffix for name, suffix in RUN_FILE_FORMATS.items() if name != "masks"},
}


def download_url(run_id: int, file_format: str) -> str:
    if file_format in RUN_FILE_FORMATS:
        return f"/api/runs/{run_id}/{file_format}"
    return f"/api/runs/{run_id}/model?format={file_format}"


def served_name(response: httpx.Response, fallback: str) -> str:
    match = re.search(r'filename="([^"]+)"', response.headers.get("content-disposition", ""))
    name = Path(match.group(1)).name if match else ""
    return name if name not in ("", ".", "..") else fallback


def stream_to(response: httpx.Response, target: Path) -> None:
    """Write a streamed response to `target` through a temporary file, so a cut stream leaves no half file."""
    partial = target.with_name(target.name + ".part")
    with partial.open("wb") as handle:
        for chunk in response.iter_bytes():
            handle.write(chunk)
    os.replace(partial, target)


def _hash_prefix(path: Path, length: int) -> hashlib._Hash:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while length > 0:
            chunk = handle.read(min(1 << 20, length))
            if not chunk:
                break
            digest.update(chunk)
            length -= len(chunk)
    return digest


def targets(run: Run, file_format: str, path: Path | None) -> tuple[Path | None, Path, Path]:
    """The file asked for (None: the server's name in `folder`), its folder, and the partial file."""
    if path is None or path.is_dir():
        folder = path or Path.cwd()
        return None, folder, folder / f"prunelab-run{run.id}-{file_format}.part"
    return path, path.parent, path.with_name(path.name + ".part")


def download_to(http: Http, run: Run, file_format: str, path: Path | None, progress: bool | None) -> Download:
    """Download `file_format` of `run` to `path` (a file, a folder, or None for the current folder)."""
    artifact = run.artifact(file_format)
    url = artifact.url if artifact is not None else download_url(run.id, file_format)
    target, folder, partial = targets(run, file_format, path)
    have = partial.stat().st_size if partial.is_file() else 0
    headers: dict[str, str] = {}
    if artifact is not None and 0 < have <= artifact.size_bytes:
        # Resume where the part ends; from the last byte when it is complete, to learn the served name.
        offset = min(have, artifact.size_bytes - 1)
        headers = {"Range": f"bytes={offset}-", "If-Range": f'"{artifact.sha256}"'}
    with http.stream("GET", url, headers=headers) as response:
        start = 0
        if response.status_code == 206:
            match = re.match(r"bytes (\d+)-", response.headers.get("content-range", ""))
            start = int(match.group(1)) if match else -1
            if start < 0 or start > have:
                raise PruneLabError(f"the server resumed the {file_format} of run {run.id} at an unexpected range")
        if target is None:
            fallback = f"prunelab-run{run.id}-{file_format}{DOWNLOAD_FORMATS[file_format]}"
            target = folder / served_name(response, fallback)
        digest = _hash_prefix(partial, start) if start else hashlib.sha256()
        total = artifact.size_bytes if artifact is not None else int(response.headers.get("content-length", 0)) or None
        with partial.open("r+b" if start else "wb") as handle, byte_bar(target.name, total, start, progress) as bar:
            handle.seek(start)
            handle.truncate()
            for chunk in response.iter_bytes():
                handle.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        served = response.headers.get("x-content-sha256")
    sha256 = digest.hexdigest()
    recorded = artifact.sha256 if artifact is not None else served
    if recorded is not None and sha256 != recorded:
        partial.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"the downloaded {file_format} of run {run.id} has sha256 {sha256}, but the server recorded {recorded}; "
            "the partial file was removed: download it again"
        )
    size = partial.stat().st_size
    os.replace(partial, target)
    return Download(path=target, size_bytes=size, sha256=sha256, resumed_from=start)
