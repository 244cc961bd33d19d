"""Keep credentials out of everything the tracker stores: params, tags, logged text, manifests, reports.

Credentials reach a pod as environment variables (Kubernetes Secrets), so the values to hide are read from the
environment at scrub time: whatever a secret is called, if its value shows up in a string it is replaced. URL
userinfo (`scheme://user:password@host`) is masked too, since endpoints are often written that way.
"""

from __future__ import annotations

import fnmatch
import os
import re
from typing import Any

MASK = "***"
SECRET_ENV_PATTERNS = ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "*_TOKEN", "*_PASSWORD",
                       "*_SECRET", "*_SECRET_KEY", "*_API_KEY")
# Values shorter than this are not masked: replacing e.g. "1" or "true" everywhere would garble the logs.
MIN_SECRET_LENGTH = 4
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s:]+(?::[^/@\s]*)?)@")


def is_secret_name(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name.upper(), pattern) for pattern in SECRET_ENV_PATTERNS)


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """The values of secret-looking environment variables, longest first (so overlapping values mask fully)."""
    environ = dict(os.environ if environ is None else environ)
    values = {value for name, value in environ.items() if is_secret_name(name) and len(value) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def scrub(text: str, secrets: list[str] | None = None) -> str:
    secrets = secret_values() if secrets is None else secrets
    for value in secrets:
        text = text.replace(value, MASK)
    return _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def scrub_obj(obj: Any, secrets: list[str] | None = None) -> Any:
    """`scrub` applied to every string inside nested dicts, lists and tuples (keys included)."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(obj, str):
        return scrub(obj, secrets)
    if isinstance(obj, dict):
        return {scrub_obj(k, secrets): scrub_obj(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(scrub_obj(v, secrets) for v in obj)
    return obj


def contains_secret(text: str, secrets: list[str] | None = None) -> bool:
    secrets = secret_values() if secrets is None else secrets
    leaked_userinfo = any(match["userinfo"] != MASK for match in _USERINFO.finditer(text))
    return leaked_userinfo or any(value in text for value in secrets)
