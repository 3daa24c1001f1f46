"""Artifacts in an S3-compatible object store (AWS S3, MinIO, moto), through obstore.

obstore already retries each HTTP request a few times with backoff. On top of that a whole
operation (an upload and its read-back check, a download) is tried `store_attempts` times,
waiting `store_backoff_s` and doubling: a server that is restarting, or a connection cut in
the middle of a multipart upload, costs a retry, logged with the store's address. The last
failure is raised as `StoreUnavailable` naming the store. An object appears under its key only
when its upload completes (S3 PUT and CompleteMultipartUpload are atomic), so a reader never
sees part of one; an upload abandoned midway stays invisible (a bucket lifecycle rule
"AbortIncompleteMultipartUpload" reclaims its parts).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import BaseError, PermissionDeniedError, PreconditionError, UnauthenticatedError
from obstore.store import S3Store
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from prunelab.core.exports import file_digest, zipped_size
from prunelab.server.artifacts.storage import (
    CHUNK_BYTES,
    ObjectStream,
    Recorded,
    StoredFile,
    StoredFileMismatch,
    StoreUnavailable,
    VerifiedVersions,
    byte_range,
    check_digest,
    check_key,
)

if TYPE_CHECKING:
    from prunelab.server.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
PART_BYTES = 8 << 20  # multipart above this size; S3 allows parts of 5 MiB and more


@dataclass(frozen=True)
class S3Options:
    bucket: str
    prefix: str
    endpoint: str
    attempts: int
    backoff_s: float
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Options:
        parts = urlsplit(settings.artifact_url)
        return cls(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint=settings.s3_endpoint_url.rstrip("/"),
            attempts=settings.store_attempts,
            backoff_s=settings.store_backoff_s,
            timeout_s=settings.store_timeout_s,
        )

    @property
    def url(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {self.endpoint}" if self.endpoint else where


def _retryable(error: BaseException, rewrite: bool) -> bool:
    if isinstance(error, FileNotFoundError | PermissionDeniedError | UnauthenticatedError | PreconditionError):
        return False  # an answer, not an outage: retrying changes nothing
    if isinstance(error, StoredFileMismatch):
        return rewrite  # a write read back wrong is sent again; a stored object that differs stays different
    return isinstance(error, BaseError | OSError)


def _first_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"


class S3ArtifactStore:
    """The artifact store on S3. Credentials and region come from the usual AWS_* environment variables."""

    def __init__(self, options: S3Options) -> None:
        self.options = options
        self.url = options.url
        config: dict[str, object] = {}
        if options.endpoint:
            config["endpoint"] = options.endpoint
        if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
            config["region"] = "us-east-1"  # MinIO and moto accept any; AWS needs the bucket's
        timeout = timedelta(seconds=options.timeout_s)
        self._store = S3Store(
            options.bucket,
            prefix=options.prefix or None,
            client_options={
                "allow_http": options.endpoint.startswith("http://"),
                "timeout": timeout,
                "connect_timeout": timedelta(seconds=min(10.0, options.timeout_s)),
            },
            retry_config={
                "max_retries": 2,
                "backoff": {"init_backoff": timedelta(milliseconds=200), "max_backoff": timedelta(seconds=2)},
                "retry_timeout": timeout,
            },
            **config,  # type: ignore[arg-type]
        )
        self._verified = VerifiedVersions()

    # retries ---------------------------------------------------------------
    def _retrying(self, what: str, operation: Callable[[], T], *, rewrite: bool = False) -> T:
        attempts = self.options.attempts

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "artifact store %s: %s failed (try %d of %d): %s; retrying in %.1f s",
                self.url, what, state.attempt_number, attempts, _first_line(error) if error else "?", wait,
            )  # fmt: skip

        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=self.options.backoff_s, max=60),
            retry=retry_if_exception(lambda error: _retryable(error, rewrite)),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(operation)
        except (FileNotFoundError, StoredFileMismatch):
            raise
        except Exception as error:
            raise StoreUnavailable(
                f"the artifact store {self.url} failed to {what} after {attempts} tries: {_first_line(error)}"
            ) from error

    # writes ----------------------------------------------------------------
    def put_file(self, key: str, source: Path) -> StoredFile:
        check_key(key)
        size, sha256 = source.stat().st_size, file_digest(source)
        zip_size = zipped_size(source, arcname=key.rsplit("/", 1)[-1])
        expected = Recorded(key, size, sha256)

        def upload_and_check() -> str | None:
            obstore.put(
                self._store,
                key,
                source,
                use_multipart=size > PART_BYTES,
                chunk_size=PART_BYTES,
                attributes={"sha256": sha256},
            )
            # The verify step: what the store now holds, read back in full, must be what was sent.
            stored_size, stored_sha256, version = self._hash_object(key)
            check_digest(key, expected, stored_size, stored_sha256)
            return version

        version = self._retrying(f"store {key}", upload_and_check, rewrite=True)
        return StoredFile(key, size, zip_size, sha256, version=version)

    def put_bytes(self, key: str, data: bytes) -> StoredFile:
        with tempfile.TemporaryDirectory(prefix="prunelab-put-") as scratch:
            source = Path(scratch) / key.rsplit("/", 1)[-1]
            source.write_bytes(data)
            return self.put_file(key, source)

    # reads -----------------------------------------------------------------
    def _hash_object(self, key: str, version: str | None = None) -> tuple[int, str, str | None]:
        options: dict[str, object] = {"if_match": version} if version else {}
        result = obstore.get(self._store, key, options=options)  # type: ignore[arg-type]
        digest = hashlib.sha256()
        size = 0
        for chunk in result.stream(min_chunk_size=CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest(), result.meta["e_tag"]

    def exists(self, key: str) -> bool:
        check_key(key)
        try:
            self._retrying(f"look up {key}", lambda: obstore.head(self._store, key))
        except FileNotFoundError:
            return False
        return True

    def get_bytes(self, key: str) -> bytes:
        check_key(key)
        return self._retrying(f"read {key}", lambda: bytes(obstore.get(self._store, key).bytes()))

    def _checked_version(self, recorded: Recorded) -> str | None:
        """The version of the object now stored, once it is known to hold the recorded bytes (re-hashed if new)."""
        meta = obstore.head(self._store, recorded.key)
        if meta["size"] != recorded.size_bytes:
            raise StoredFileMismatch(f"{recorded.key}: size differs from the recorded {recorded.size_bytes} bytes")
        if self._verified.matches(recorded, meta["e_tag"]):
            return meta["e_tag"]
        size, sha256, version = self._hash_object(recorded.key)
        check_digest(recorded.key, recorded, size, sha256)
        self._verified.remember(recorded, version)
        return version

    def _get_range(self, recorded: Recorded, version: str | None, start: int, end: int) -> Iterator[bytes]:
        options: dict[str, object] = {"range": (start, end)}
        if version:
            options["if_match"] = version  # the object replaced since it was checked is refused, never mixed in
        result = obstore.get(self._store, recorded.key, options=options)  # type: ignore[arg-type]
        if result.meta["size"] != recorded.size_bytes:
            raise StoredFileMismatch(f"{recorded.key}: size differs from the recorded {recorded.size_bytes} bytes")
        return iter(result.stream(min_chunk_size=CHUNK_BYTES))

    def stream(self, recorded: Recorded, start: int = 0, end: int | None = None) -> ObjectStream:
        check_key(recorded.key)
        start, end = byte_range(recorded.size_bytes, start, end)

        def open_range() -> Iterator[bytes]:
            if recorded.version is not None and start < end:
                try:  # the usual case: one request, no hashing while the object is the one verified at write
                    return self._get_range(recorded, recorded.version, start, end)
                except PreconditionError:
                    pass  # replaced or rewritten since: check its bytes in full below
            version = self._checked_version(recorded)
            return self._get_range(recorded, version, start, end) if start < end else iter(())

        return ObjectStream(self._retrying(f"read {recorded.key}", open_range), start, end)

    def fetch_to(self, recorded: Recorded, target: Path) -> Path:
        check_key(recorded.key)

        def download() -> Path:
            result = obstore.get(self._store, recorded.key)
            digest = hashlib.sha256()
            with target.open("wb") as output:
                for chunk in result.stream(min_chunk_size=CHUNK_BYTES):
                    digest.update(chunk)
                    output.write(chunk)
            check_digest(recorded.key, recorded, target.stat().st_size, digest.hexdigest())
            return target

        return self._retrying(f"download {recorded.key}", download)

    def digest(self, key: str) -> tuple[int, str]:
        check_key(key)
        size, sha256, _ = self._retrying(f"read {key}", lambda: self._hash_object(key))
        return size, sha256

    def list_keys(self, prefix: str) -> list[str]:
        check_key(prefix)

        def listing() -> list[str]:
            return sorted(meta["path"] for batch in obstore.list(self._store, f"{prefix}/") for meta in batch)

        return self._retrying(f"list {prefix}/", listing)

    def delete(self, key: str) -> None:
        check_key(key)
        self._retrying(f"delete {key}", lambda: obstore.delete(self._store, key))

    def delete_prefix(self, prefix: str) -> None:
        keys = self.list_keys(prefix)
        if keys:
            self._retrying(f"delete {prefix}/", lambda: obstore.delete(self._store, keys))

    def remove_stale_partials(self, older_than_s: float) -> int:
        return 0  # nothing half-written is ever visible in S3; see the module's docstring


@lru_cache(maxsize=16)
def s3_store(options: S3Options) -> S3ArtifactStore:
    """One client per process and address: obstore pools its connections inside it."""
    return S3ArtifactStore(options)
