"""Rules every uploaded zip archive (.keras, .npz) must meet before any member is read.

Pure standard library (no web code), so the worker re-checks a model with the same rules.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath


class UploadRejected(ValueError):
    """An uploaded file that is refused; the message says why (the API answers 422 with it)."""


def check_member_name(name: str) -> None:
    """No NUL, no absolute path (POSIX or Windows), no '..' segment: a member can never land outside."""
    if "\x00" in name:
        raise UploadRejected(f"archive member {name!r} has a NUL byte in its name")
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or name.startswith(("/", "\\")):
        raise UploadRejected(f"archive member {name!r} has an absolute path")
    if ".." in posix.parts or ".." in windows.parts:
        raise UploadRejected(f"archive member {name!r} points outside the archive ('..')")


def check_archive(
    archive: zipfile.ZipFile, *, kind: str, max_members: int, max_total_bytes: int
) -> list[zipfile.ZipInfo]:
    """Member count, names and declared unpacked size; returns the members."""
    members = archive.infolist()
    if len(members) > max_members:
        raise UploadRejected(f"a {kind} archive may hold at most {max_members} members, this one has {len(members)}")
    for member in members:
        check_member_name(member.filename)
    total = sum(member.file_size for member in members)
    if total > max_total_bytes:
        raise UploadRejected(
            f"the {kind} archive unpacks to {total} bytes, more than the limit of {max_total_bytes} "
            "(a decompression bomb?)"
        )
    return members


def open_zip(path: Path, kind: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise UploadRejected(f"not a {kind} file: it must be a zip archive ({error})") from None
