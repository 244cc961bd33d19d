"""Read and write files by URI: a local path, `file://`, `s3://bucket/key` (MinIO or any S3) and `https://`.

Two promises hold for every transfer, because a nightly job meets every fault there is:
- nothing partial is ever at the final name. Downloads land in a temporary sibling file that is renamed;
  uploads go to a temporary key (`<prefix>/.tmp-<uuid>`) that is committed by a server-side copy to the final key,
  then deleted. A reader listing the prefix may see a `.tmp-*` key left by a crash, never a truncated object.
- transient faults (connection refused/reset, timeouts, HTTP 5xx, throttling) are retried with exponential
  backoff; after the last attempt a StorageError names the URI, the attempt count and the last error.

Credentials never pass through this module: boto3 reads them from the environment (or the pod's service account),
which is where Kubernetes Secrets put them. The endpoint comes from `MOCA_S3_ENDPOINT_URL` or `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from moca.errors import StorageError
from moca.io import atomic_open
from moca.progress import progress

log = logging.getLogger(__name__)
T = TypeVar("T")

ALLOWED_ROOTS_ENV = "MOCA_ALLOWED_ROOTS"
THROTTLING_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable",
                    "InternalError"}
MISSING_CODES = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: delay_i = min(base_delay_s * 2**i, max_delay_s). Env overrides suit pods and tests."""

    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(
            attempts=int(os.environ.get("MOCA_STORAGE_ATTEMPTS", cls.attempts)),
            base_delay_s=float(os.environ.get("MOCA_STORAGE_BASE_DELAY_S", cls.base_delay_s)),
            max_delay_s=float(os.environ.get("MOCA_STORAGE_MAX_DELAY_S", cls.max_delay_s)),
        )


# --- URI parsing and policy -----------------------------------------------------------------------------------


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageError(f"{uri}: not an s3://bucket/key URI")
    return parsed.netloc, key


def _local_path(uri: str) -> Path | None:
    """The filesystem path a local URI names, or None for remote schemes."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "":
        return Path(uri)
    return None


def check_uri_allowed(uri: str, allowed_roots: Iterable[str] | None = None) -> None:
    """Refuse `uri` unless it lies under one of `allowed_roots` (default: comma-separated `MOCA_ALLOWED_ROOTS`).

    With no roots configured every URI is allowed (the laptop default). Local paths are resolved first, so
    `..` and symlinks cannot escape a root; remote URIs must start with a remote root at a `/` boundary.
    """
    if allowed_roots is None:
        allowed_roots = [r for r in os.environ.get(ALLOWED_ROOTS_ENV, "").split(",") if r.strip()]
    roots = [r.strip() for r in allowed_roots]
    if not roots:
        return
    local = _local_path(uri)
    for root in roots:
        root_local = _local_path(root)
        if local is not None and root_local is not None:
            if local.resolve().is_relative_to(root_local.resolve()):
                return
        elif local is None and root_local is None:
            prefix = root.rstrip("/") + "/"
            # `..` is literal in an S3 key but resolved by HTTP servers and proxies: refuse it rather than guess.
            climbs = ".." in urlparse(uri).path.split("/")
            if (uri == root.rstrip("/") or uri.startswith(prefix)) and not climbs:
                return
    raise StorageError(f"{uri}: outside the allowed roots {roots} (set by {ALLOWED_ROOTS_ENV})")


# --- retries ----------------------------------------------------------------------------------------------------


def _client_error_code(exc: BaseException) -> tuple[str, int]:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """The exception and what it wraps: boto3's managed transfers re-raise ClientError as S3UploadFailedError."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_missing(exc: BaseException) -> bool:
    for cause in _causes(exc):
        code, status = _client_error_code(cause)
        if code in MISSING_CODES or status == 404:
            return True
        if isinstance(cause, urllib.error.HTTPError) and cause.code == 404:
            return True
    return False


def _is_transient(exc: BaseException) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    for cause in _causes(exc):
        if isinstance(cause, (BotoConnectionError, HTTPClientError, ConnectionError, TimeoutError)):
            return True
        code, status = _client_error_code(cause)
        if status >= 500 or code in THROTTLING_CODES:
            return True
        if isinstance(cause, urllib.error.HTTPError):
            return cause.code >= 500 or cause.code == 429
        if isinstance(cause, urllib.error.URLError):
            return True
    return False


def with_retries(what: str, uri: str, action: Callable[[], T], policy: RetryPolicy | None = None) -> T:
    """Run `action`, retrying transient faults with backoff; turn every failure into a StorageError naming `uri`."""
    policy = policy or RetryPolicy.from_env()
    for attempt in range(1, policy.attempts + 1):
        try:
            return action()
        except StorageError:
            raise
        except Exception as exc:  # classified below; anything unexpected still becomes a clear StorageError
            if _is_missing(exc):
                raise StorageError(f"{uri}: not found ({what})") from exc
            if not _is_transient(exc):
                raise StorageError(f"{uri}: {what} failed: {exc}") from exc
            if attempt == policy.attempts:
                raise StorageError(
                    f"{uri}: {what} failed after {attempt} attempt(s); last error: {type(exc).__name__}: {exc}"
                ) from exc
            delay = min(policy.base_delay_s * 2 ** (attempt - 1), policy.max_delay_s)
            log.warning("%s %s: attempt %d/%d failed (%s); retrying in %.2f s", what, uri, attempt,
                        policy.attempts, exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")


# --- S3 ----------------------------------------------------------------------------------------------------------


def s3_endpoint() -> str | None:
    return os.environ.get("MOCA_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_client(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client. botocore's own retries are off so that `with_retries` is the one place that retries."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=float(os.environ.get("MOCA_S3_CONNECT_TIMEOUT_S", 10)),
        read_timeout=float(os.environ.get("MOCA_S3_READ_TIMEOUT_S", 60)),
        s3={"addressing_style": "path"},  # MinIO and moto serve path-style; virtual hosts need DNS
    )
    return boto3.client("s3", endpoint_url=endpoint_url or s3_endpoint(), config=config)


def _s3_download(uri: str, dest: Path, policy: RetryPolicy | None) -> Path:
    bucket, key = split_s3(uri)
    client = s3_client()

    def fetch() -> None:
        with atomic_open(dest, "wb") as handle:
            client.download_fileobj(bucket, key, handle)

    with_retries("download", uri, fetch, policy)
    return dest


def _s3_upload_file(path: Path, uri: str, client: Any, policy: RetryPolicy | None) -> None:
    bucket, key = split_s3(uri)
    if not key or key.endswith("/"):
        raise StorageError(f"{uri}: upload needs a full object key, not a bucket or prefix")
    parent = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    temp_key = f"{parent}.tmp-{uuid.uuid4().hex}"

    def commit() -> None:
        client.upload_file(str(path), bucket, temp_key)
        client.copy({"Bucket": bucket, "Key": temp_key}, bucket, key)  # managed copy: multipart above 5 GB

    try:
        with_retries("upload", uri, commit, policy)
    finally:
        # Best effort: if the store is down this fails too, and the `.tmp-` key is what a crash leaves behind.
        try:
            client.delete_object(Bucket=bucket, Key=temp_key)
        except Exception as exc:  # noqa: BLE001 - cleanup must not mask the real outcome
            log.warning("could not delete temporary key s3://%s/%s: %s", bucket, temp_key, exc)


def _copy_local(src: Path, dest: Path) -> None:
    with open(src, "rb") as source, atomic_open(dest, "wb") as out:
        shutil.copyfileobj(source, out)


# --- public API --------------------------------------------------------------------------------------------------


def download(uri: str, dest: Path, policy: RetryPolicy | None = None) -> Path:
    """Copy the object or file `uri` names to `dest` (atomically) and return `dest`."""
    check_uri_allowed(uri)
    dest = Path(dest)
    scheme = urlparse(uri).scheme
    local = _local_path(uri)
    if local is not None:
        if not local.is_file():
            raise StorageError(f"{uri}: not found (download)")
        _copy_local(local, dest)
        return dest
    if scheme == "s3":
        return _s3_download(uri, dest, policy)
    if scheme == "https":
        def fetch() -> None:
            with urllib.request.urlopen(uri, timeout=60) as response, atomic_open(dest, "wb") as out:  # noqa: S310
                shutil.copyfileobj(response, out)

        with_retries("download", uri, fetch, policy)
        return dest
    raise StorageError(f"{uri}: unsupported URI scheme {scheme!r} (use a path, file://, s3:// or https://)")


def upload(path: Path, uri: str, policy: RetryPolicy | None = None) -> str:
    """Copy the file or folder `path` to `uri`; a folder becomes one object per file under the `uri` prefix."""
    check_uri_allowed(uri)
    path = Path(path)
    if not path.exists():
        raise StorageError(f"{path}: nothing to upload (not found)")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    scheme = urlparse(uri).scheme
    local_root = _local_path(uri)
    client = s3_client() if scheme == "s3" else None
    if local_root is None and scheme != "s3":
        raise StorageError(f"{uri}: cannot upload to scheme {scheme!r} (use a path, file:// or s3://)")
    for file in progress(files, desc=f"upload {uri}"):
        target = uri if path.is_file() else uri.rstrip("/") + "/" + file.relative_to(path).as_posix()
        if client is not None:
            _s3_upload_file(file, target, client, policy)
        else:
            _copy_local(file, _local_path(target))  # type: ignore[arg-type]
    return uri


def exists(uri: str, policy: RetryPolicy | None = None) -> bool:
    local = _local_path(uri)
    if local is not None:
        return local.exists()
    scheme = urlparse(uri).scheme
    if scheme != "s3":
        raise StorageError(f"{uri}: exists() supports paths, file:// and s3:// only")
    bucket, key = split_s3(uri)
    client = s3_client()
    try:
        with_retries("head", uri, lambda: client.head_object(Bucket=bucket, Key=key), policy)
    except StorageError as exc:
        if _is_missing(exc):
            return False
        raise
    return True
