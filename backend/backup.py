"""`prunelab backup DIR` and `prunelab restore DIR`: the database and every stored object, copied while PruneLab runs.

The database is copied as the engine itself guarantees a consistent copy of a live database: SQLite through its
online backup API (page by page, restarted by SQLite if a writer changes a page meanwhile), PostgreSQL by
`COPY ... TO STDOUT` of every table inside one REPEATABLE READ, READ ONLY transaction (what `pg_dump` does for the
data; the schema is Alembic's, so restore migrates the target to the backup's revision and loads the rows).
The objects are then read through the one `ArtifactStore` interface with their sha256. An object written after
the database snapshot belongs to a row the snapshot does not hold: it is copied too and simply unused.

A backup is written into a `.partial-` sibling folder and its `manifest.json` (size and sha256 of every file)
last, then renamed to DIR: a backup cut off half-way leaves no folder with a manifest, and restore accepts
nothing else. Restore checks every file against the manifest before it writes anything, refuses an installation
that holds any row or object unless told to overwrite, writes the objects first and the rows last (a row never
names an object that is not there), then upgrades the schema to this version's head.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import zstandard
from alembic import command
from psycopg import sql
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from prunelab import __version__
from prunelab.core.exports import file_digest
from prunelab.server.artifacts.service import get_store
from prunelab.server.artifacts.storage import (
    STORE_PREFIXES,
    ArtifactStore,
    Recorded,
    check_key,
)
from prunelab.server.migrate import alembic_config, upgrade_to_head
from prunelab.server.models import Base
from prunelab.server.settings import Settings

FORMAT = "prunelab-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PARTIAL_PREFIX = ".partial-"
SQLITE_FILE = "database/prunelab.sqlite"


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


Report = Callable[[str], None]


@dataclass(frozen=True)
class Installation:
    """The database and the store one set of settings names."""

    database_url: str
    store: ArtifactStore

    @classmethod
    def of(cls, settings: Settings) -> Installation:
        return cls(settings.database_url, get_store(settings))

    @property
    def dialect(self) -> str:
        return make_url(self.database_url).get_backend_name()


# -- helpers -------------------------------------------------------------------------------------------------


def _file_entry(folder: Path, relative: str) -> dict[str, Any]:
    path = folder / relative
    return {"path": relative, "size": path.stat().st_size, "sha256": file_digest(path)}


def _sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupError(f"PRUNELAB_DATABASE_URL {database_url!r} names no SQLite file")
    return Path(database)


def _psycopg_conninfo(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _revision(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def rows_held(database_url: str) -> list[str]:
    """The tables of PruneLab's schema that hold at least one row (empty when there is no schema yet)."""
    if make_url(database_url).get_backend_name() == "sqlite" and not _sqlite_path(database_url).exists():
        return []
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            present = set(inspect(connection).get_table_names())
            return [
                table.name
                for table in Base.metadata.sorted_tables
                if table.name in present
                and connection.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{table.name}")')).scalar()
            ]
    finally:
        engine.dispose()


def object_keys(store: ArtifactStore) -> Iterator[str]:
    for prefix in STORE_PREFIXES:
        yield from store.list_keys(prefix)


# -- backup --------------------------------------------------------------------------------------------------


def _backup_sqlite(database_url: str, folder: Path) -> dict[str, Any]:
    source_path = _sqlite_path(database_url)
    if not source_path.exists():
        raise BackupError(f"there is no database at {source_path}: nothing to back up (run `prunelab migrate`)")
    target_path = folder / SQLITE_FILE
    target_path.parent.mkdir(parents=True)
    source = sqlite3.connect(source_path, timeout=30)
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)  # SQLite's online backup: a consistent copy while others write
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        revision = target.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    except sqlite3.OperationalError as error:
        raise BackupError(f"cannot back up {source_path}: {error} (has `prunelab migrate` run?)") from error
    finally:
        target.close()
        source.close()
    return {"dialect": "sqlite", "revision": revision, "files": [_file_entry(folder, SQLITE_FILE)]}


def _backup_postgresql(database_url: str, folder: Path) -> dict[str, Any]:
    revision, head = _revision(database_url), _head_revision()
    if revision != head:
        raise BackupError(
            f"the database is at schema revision {revision}, this PruneLab's is {head}: back it up with the "
            "PruneLab version that serves it, or run `prunelab migrate` first"
        )
    (folder / "database").mkdir()
    tables, files = [], []
    with psycopg.connect(_psycopg_conninfo(database_url)) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        with connection.transaction():  # one snapshot for every table
            connection.execute("SET LOCAL TIME ZONE 'UTC'")
            connection.execute("SET LOCAL extra_float_digits = 3")  # floats written exactly
            for table in Base.metadata.sorted_tables:  # parents before children: the order restore loads them
                columns = [column.name for column in table.columns]
                relative = f"database/{table.name}.copy.zst"
                statement = sql.SQL("COPY {} ({}) TO STDOUT").format(
                    sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
                with (
                    (folder / relative).open("wb") as raw,
                    zstandard.ZstdCompressor().stream_writer(raw) as output,
                    connection.cursor() as cursor,
                    cursor.copy(statement) as copy,
                ):
                    for chunk in copy:
                        output.write(chunk)
                tables.append({"name": table.name, "columns": columns, "path": relative})
                files.append(_file_entry(folder, relative))
    return {"dialect": "postgresql", "revision": revision, "tables": tables, "files": files}


def _backup_objects(store: ArtifactStore, folder: Path, report: Report) -> tuple[list[dict[str, Any]], list[str]]:
    objects, vanished = [], []
    for key in object_keys(store):
        target = folder / "objects" / check_key(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            size, sha256 = store.digest(key)
            store.fetch_to(Recorded(key, size, sha256), target)  # checks the bytes against that digest
        except FileNotFoundError:
            vanished.append(key)  # deleted (its run deleted) since it was listed
            target.unlink(missing_ok=True)
            report(f"  {key}: deleted while the backup ran, left out")
            continue
        objects.append({"key": key, "path": f"objects/{key}", "size": size, "sha256": sha256})
    return objects, vanished


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """The last file of a backup: a folder without it is not a backup."""
    path = folder / MANIFEST
    with path.open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())


def backup(settings: Settings, target: Path, report: Report = print) -> dict[str, Any]:
    """Copy the database and every stored object into `target` (a new or empty folder); returns the manifest."""
    target = target.absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} already exists and is not an empty folder: name a new one")
    target.parent.mkdir(parents=True, exist_ok=True)
    installation = Installation.of(settings)
    folder = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{target.name}-", dir=target.parent))
    try:
        report(f"backing up {installation.dialect} database")
        if installation.dialect == "sqlite":
            database = _backup_sqlite(installation.database_url, folder)
        elif installation.dialect == "postgresql":
            database = _backup_postgresql(installation.database_url, folder)
        else:
            raise BackupError(
                f"cannot back up a {installation.dialect} database: PruneLab runs on SQLite or PostgreSQL"
            )
        report(f"backing up the objects of {installation.store.url}")
        objects, vanished = _backup_objects(installation.store, folder, report)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(),
            "prunelab_version": __version__,
            "database": database,
            "store": installation.store.url,
            "objects": objects,
            "vanished": vanished,
        }
        write_manifest(folder, manifest)
        if target.exists():
            target.rmdir()
        folder.rename(target)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # a kill leaves it behind, without a manifest
        raise
    report(f"backup in {target}: schema {database['revision']}, {len(objects)} objects")
    return manifest


# -- restore -------------------------------------------------------------------------------------------------


def read_backup(folder: Path) -> dict[str, Any]:
    """The manifest of a complete backup in `folder`, every file checked against it; BackupError otherwise."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BackupError(f"{folder} is not a folder")
    if not path.is_file():
        raise BackupError(
            f"{folder} has no {MANIFEST}: it is not a complete PruneLab backup (an interrupted one never gets one)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BackupError(f"{path} is not a backup manifest: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a PruneLab backup manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{path} has format version {manifest.get('format_version')}; this PruneLab reads 1")
    for entry in [*manifest["database"]["files"], *manifest["objects"]]:
        if "key" in entry:
            check_key(entry["key"])
        file = folder / entry["path"]
        if not file.resolve().is_relative_to(folder.resolve()) or not file.is_file():
            raise BackupError(f"{folder}: {entry['path']} is missing: the backup is incomplete")
        if file.stat().st_size != entry["size"] or file_digest(file) != entry["sha256"]:
            raise BackupError(f"{folder}: {entry['path']} differs from its sha256 in the manifest: it is damaged")
    return manifest


def _check_empty(installation: Installation, overwrite: bool) -> list[str]:
    """The keys already stored; BackupError when the installation holds anything and `overwrite` is off."""
    tables = rows_held(installation.database_url)
    keys = list(object_keys(installation.store))
    if (tables or keys) and not overwrite:
        held = ", ".join([*(f"rows in {name}" for name in tables[:5]), *([f"{len(keys)} objects"] if keys else [])])
        raise BackupError(
            f"this installation is not empty ({held}): restore into an empty one (a new database and store), "
            "or pass --overwrite to replace everything in it"
        )
    return keys


def _restore_sqlite(installation: Installation, folder: Path) -> None:
    target_path = _sqlite_path(installation.database_url)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(folder / SQLITE_FILE)
    target = sqlite3.connect(target_path, timeout=30)
    try:
        source.backup(target)  # replaces every page of the target: its old rows are gone with them
    finally:
        target.close()
        source.close()


def _drop_schema(connection: psycopg.Connection[Any]) -> None:
    for table in [*reversed(Base.metadata.sorted_tables), "alembic_version"]:
        name = table if isinstance(table, str) else table.name
        connection.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _restore_postgresql(installation: Installation, folder: Path, database: dict[str, Any]) -> None:
    conninfo = _psycopg_conninfo(installation.database_url)
    with psycopg.connect(conninfo) as connection:
        _drop_schema(connection)  # the target is empty or to be overwritten: rebuild it at the backup's revision
    command.upgrade(alembic_config(installation.database_url), database["revision"])
    with psycopg.connect(conninfo) as connection, connection.transaction():
        connection.execute("SET LOCAL TIME ZONE 'UTC'")
        for table in database["tables"]:
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table["name"]), sql.SQL(", ").join(map(sql.Identifier, table["columns"]))
            )
            with (
                (folder / table["path"]).open("rb") as raw,
                zstandard.ZstdDecompressor().stream_reader(raw) as source,
                connection.cursor() as cursor,
                cursor.copy(statement) as copy,
            ):
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
            for column in table["columns"]:  # ids handed out next continue after the restored ones
                sequence = connection.execute(
                    "SELECT pg_get_serial_sequence(%s, %s)", (f'"{table["name"]}"', column)
                ).fetchone()
                if sequence and sequence[0]:
                    connection.execute(
                        sql.SQL("SELECT setval(%s, coalesce(max({c}), 1), max({c}) IS NOT NULL) FROM {t}").format(
                            c=sql.Identifier(column), t=sql.Identifier(table["name"])
                        ),
                        (sequence[0],),
                    )


def restore(settings: Settings, source: Path, overwrite: bool = False, report: Report = print) -> dict[str, Any]:
    """Restore the backup in `source` into the installation `settings` names, which must be empty unless `overwrite`."""
    source = source.absolute()
    manifest = read_backup(source)
    installation = Installation.of(settings)
    database = manifest["database"]
    if database["dialect"] != installation.dialect:
        raise BackupError(
            f"this backup holds a {database['dialect']} database and PRUNELAB_DATABASE_URL names a "
            f"{installation.dialect} one: restore it into a {database['dialect']} installation"
        )
    existing = _check_empty(installation, overwrite)
    if existing:
        report(f"--overwrite: deleting {len(existing)} objects of {installation.store.url}")
        for prefix in STORE_PREFIXES:
            installation.store.delete_prefix(prefix)
    report(f"restoring {len(manifest['objects'])} objects into {installation.store.url}")
    for entry in manifest["objects"]:  # objects first: a restored row never names a missing object
        stored = installation.store.put_file(entry["key"], source / entry["path"])
        if stored.sha256 != entry["sha256"]:
            raise BackupError(f"{entry['key']} was stored with another sha256 than the backup's; restore again")
    report(f"restoring the {database['dialect']} database (schema {database['revision']})")
    if database["dialect"] == "sqlite":
        _restore_sqlite(installation, source)
    else:
        _restore_postgresql(installation, source, database)
    upgrade_to_head(installation.database_url)
    report(f"restored {source} into this installation")
    return manifest
