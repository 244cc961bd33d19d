"""Read and write files by URI: a local path, `file://`, `s3://bucket/key` (MinIO or any S3) and `https://`.

Two promises hold for every transfer, because a nightly job meets every fault there is:
- nothing partial is ever at the final name. Downloads land in a temporary sibling file that is renamed;
  uploads go to a temporary key (`<prefix>/.tmp-<uuid>`) that is committed by a server-side copy to the final key,
  then deleted. A reader listing the prefix may see a `.tmp-*` key left by a crash, never a truncated object.
- transient faults (connection refused/reset, timeouts, HTTP 5xx, throttling) are retried by the libraries that
  make the requests: botocore's `standard` (or `adaptive`) retry mode for every S3 call, s3transfer's
  `num_download_attempts` for a body cut off mid-download, urllib3's `Retry` for HTTPS. After the last attempt a
  StorageError names the URI, the attempt count and the last error; each retry is logged as a warning.

Credentials never pass through this module: boto3 reads them from the environment (or the pod's service account),
which is where Kubernetes Secrets put them. The endpoint comes from `MOCA_S3_ENDPOINT_URL` or `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from moca.errors import StorageError
from moca.io import atomic_open
from moca.progress import progress

log = logging.getLogger(__name__)

ALLOWED_ROOTS_ENV = "MOCA_ALLOWED_ROOTS"
THROTTLING_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable",
                    "InternalError"}
MISSING_CODES = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
RETRY_MODES = ("standard", "adaptive")
HTTP_RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class RetryPolicy:
    """Total attempts per request (first try included) and botocore's retry mode: `standard` backs off
    exponentially with jitter (at most 20 s a wait); `adaptive` also slows the client down when S3 throttles."""

    attempts: int = 5
    mode: str = "standard"

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.mode not in RETRY_MODES:
            raise StorageError(f"retry policy: attempts must be >= 1 and mode one of {RETRY_MODES}, got "
                               f"{self.attempts} / {self.mode!r} (MOCA_STORAGE_ATTEMPTS, MOCA_S3_RETRY_MODE)")

    @classmethod
    def from_env(cls) -> RetryPolicy:
        attempts = os.environ.get("MOCA_STORAGE_ATTEMPTS", str(cls.attempts))
        if not attempts.strip().isdigit():
            raise StorageError(f"MOCA_STORAGE_ATTEMPTS={attempts!r}: expected a whole number of attempts")
        return cls(attempts=int(attempts), mode=os.environ.get("MOCA_S3_RETRY_MODE", cls.mode))


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


# --- errors -----------------------------------------------------------------------------------------------------


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
    return False


def _is_transient(exc: BaseException) -> bool:
    """A fault the libraries retried (so the message can say how often), as opposed to one they gave up on at once."""
    import urllib3
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    for cause in _causes(exc):
        if isinstance(cause, (BotoConnectionError, HTTPClientError, urllib3.exceptions.HTTPError, ConnectionError,
                              TimeoutError)):  # fmt: skip
            return True
        code, status = _client_error_code(cause)
        if status >= 500 or status == 429 or code in THROTTLING_CODES:
            return True
    return False


def _attempts_made(exc: BaseException, policy: RetryPolicy) -> int:
    """botocore records the retries of the last request it answered with an error; connection errors carry none."""
    for cause in _causes(exc):
        retries = (getattr(cause, "response", None) or {}).get("ResponseMetadata", {}).get("RetryAttempts")
        if retries is not None:
            return int(retries) + 1
    return policy.attempts


@contextmanager
def _storage_errors(what: str, uri: str, policy: RetryPolicy) -> Iterator[None]:
    """Turn whatever a transfer raises into one StorageError naming `uri` (retries happened inside the libraries)."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:  # classified below; anything unexpected still becomes a clear StorageError
        if _is_missing(exc):
            raise StorageError(f"{uri}: not found ({what})") from exc
        if _is_transient(exc):
            raise StorageError(f"{uri}: {what} failed after {_attempts_made(exc, policy)} attempt(s); last error: "
                               f"{type(exc).__name__}: {exc}") from exc  # fmt: skip
        raise StorageError(f"{uri}: {what} failed: {exc}") from exc


# --- S3 ----------------------------------------------------------------------------------------------------------


def s3_endpoint() -> str | None:
    return os.environ.get("MOCA_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or None


def _log_retries(client: Any, policy: RetryPolicy) -> None:
    """Warn on each attempt botocore will retry, using botocore's own notion of retryable (observer only)."""
    from botocore.retries.standard import RetryEventAdapter, StandardRetryConditions

    adapter, conditions = RetryEventAdapter(), StandardRetryConditions(max_attempts=policy.attempts)

    def observe(**kwargs: Any) -> None:
        context = adapter.create_retry_context(**kwargs)
        if conditions.is_retryable(context):
            error = context.caught_exception or (context.parsed_response or {}).get("Error", {}).get("Code") or \
                f"HTTP {context.http_response.status_code}"  # fmt: skip
            log.warning("S3 %s: attempt %d/%d failed (%s); retrying in botocore's %s mode",
                        context.operation_model.name, context.attempt_number, policy.attempts, error, policy.mode)
        return None  # never decides: botocore's own handler returns the delay

    client.meta.events.register_last("needs-retry.s3", observe)


def s3_client(endpoint_url: str | None = None, policy: RetryPolicy | None = None) -> Any:
    """A boto3 S3 client that retries transient faults itself (botocore's `standard`/`adaptive` retry mode)."""
    import boto3
    from botocore.config import Config

    policy = policy or RetryPolicy.from_env()
    config = Config(
        retries={"mode": policy.mode, "total_max_attempts": policy.attempts},
        connect_timeout=float(os.environ.get("MOCA_S3_CONNECT_TIMEOUT_S", 10)),
        read_timeout=float(os.environ.get("MOCA_S3_READ_TIMEOUT_S", 60)),
        s3={"addressing_style": "path"},  # MinIO and moto serve path-style; virtual hosts need DNS
    )
    client = boto3.client("s3", endpoint_url=endpoint_url or s3_endpoint(), config=config)
    _log_retries(client, policy)
    return client


def transfer_config(policy: RetryPolicy) -> Any:
    """The transfer manager's settings: multipart above 8 MB, 10 threads (boto3's defaults), and as many attempts
    at a download whose body is cut off mid-stream (which botocore's request retries do not cover)."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(num_download_attempts=policy.attempts)


def _s3_download(uri: str, dest: Path, policy: RetryPolicy) -> Path:
    bucket, key = split_s3(uri)
    client = s3_client(policy=policy)
    with _storage_errors("download", uri, policy), atomic_open(dest, "wb") as handle:
        client.download_fileobj(bucket, key, handle, Config=transfer_config(policy))
    return dest


def _s3_upload_file(path: Path, uri: str, client: Any, policy: RetryPolicy) -> None:
    bucket, key = split_s3(uri)
    if not key or key.endswith("/"):
        raise StorageError(f"{uri}: upload needs a full object key, not a bucket or prefix")
    parent = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    temp_key = f"{parent}.tmp-{uuid.uuid4().hex}"
    try:
        with _storage_errors("upload", uri, policy):
            client.upload_file(str(path), bucket, temp_key, Config=transfer_config(policy))
            # managed copy: multipart above 5 GB; the final key appears complete or not at all
            client.copy({"Bucket": bucket, "Key": temp_key}, bucket, key, Config=transfer_config(policy))
    finally:
        # Best effort: if the store is down this fails too, and the `.tmp-` key is what a crash leaves behind.
        try:
            client.delete_object(Bucket=bucket, Key=temp_key)
        except Exception as exc:  # noqa: BLE001 - cleanup must not mask the real outcome
            log.warning("could not delete temporary key s3://%s/%s: %s", bucket, temp_key, exc)


def _https_download(uri: str, dest: Path, policy: RetryPolicy) -> Path:
    """GET with urllib3's Retry (backoff 0.5 s doubling, on connection errors and 429/5xx), streamed to `dest`."""
    import urllib3

    retry = urllib3.Retry(total=policy.attempts - 1, backoff_factor=0.5, status_forcelist=HTTP_RETRY_STATUSES,
                          allowed_methods={"GET"})  # fmt: skip
    http = urllib3.PoolManager(retries=retry, timeout=urllib3.Timeout(connect=10, read=60))
    with _storage_errors("download", uri, policy):
        response = http.request("GET", uri, preload_content=False)
        try:
            if response.status == 404:
                raise StorageError(f"{uri}: not found (download)")
            if response.status >= 400:
                raise StorageError(f"{uri}: download failed: HTTP {response.status}")
            with atomic_open(dest, "wb") as out:
                shutil.copyfileobj(response, out)
        finally:
            response.release_conn()
    return dest


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
    policy = policy or RetryPolicy.from_env()
    if scheme == "s3":
        return _s3_download(uri, dest, policy)
    if scheme == "https":
        return _https_download(uri, dest, policy)
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
    policy = policy or RetryPolicy.from_env()
    client = s3_client(policy=policy) if scheme == "s3" else None
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
    policy = policy or RetryPolicy.from_env()
    try:
        with _storage_errors("head", uri, policy):
            s3_client(policy=policy).head_object(Bucket=bucket, Key=key)
    except StorageError as exc:
        if _is_missing(exc):
            return False
        raise
    return True
