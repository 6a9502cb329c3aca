"""Which object store a URL names, and its obstore client, configured as each cloud's own
tools configure theirs.

* ``s3://bucket/key``: Amazon S3 or an S3-compatible store. The standard AWS variables
  (credentials, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``).
* ``gs://bucket/key``: Google Cloud Storage. The ``GOOGLE_*`` variables obstore reads
  (``GOOGLE_SERVICE_ACCOUNT``, ``GOOGLE_APPLICATION_CREDENTIALS``), else the instance's
  own credentials; ``STORAGE_EMULATOR_HOST`` points it at an emulator, as it does
  Google's clients.
* ``az://container/key``: Azure Blob Storage, in the account ``AZURE_STORAGE_ACCOUNT_NAME``
  names (with ``AZURE_STORAGE_ACCOUNT_KEY``, a SAS token or the managed identity);
  ``AZURE_STORAGE_USE_EMULATOR=true`` (and ``AZURITE_BLOB_STORAGE_URL``) reads Azurite.

obstore's own retries are off: ``retry.py`` retries what may pass.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

from ..errors import InvalidInputError, MissingDependencyError
from .urls import SCHEMES


def parse_url(url: str) -> tuple[str, str, str]:
    """``scheme://bucket/key`` -> (scheme, bucket, key); InvalidInputError otherwise."""
    scheme, sep, rest = url.partition("://")
    bucket, _, key = rest.partition("/")
    if not sep or f"{scheme}://" not in SCHEMES or not bucket or not key or key.endswith("/"):
        raise InvalidInputError(f"{url!r} is not an object URL: write s3://bucket/key, "
                                "gs://bucket/key or az://container/key")
    return scheme, bucket, key


def endpoint_of(url: str) -> str:
    """What, besides the URL, tells which object it names: the endpoint or account the
    environment configures (two accounts' ``az://c/k`` are two objects)."""
    scheme = parse_url(url)[0]
    env = os.environ.get
    if scheme == "s3":
        return env("AWS_ENDPOINT_URL_S3") or env("AWS_ENDPOINT_URL") or ""
    if scheme == "gs":
        return env("STORAGE_EMULATOR_HOST") or ""
    if _azure_emulator():
        return env("AZURITE_BLOB_STORAGE_URL") or "azurite"
    return env("AZURE_STORAGE_ACCOUNT_NAME") or env("AZURE_STORAGE_ACCOUNT") or ""


def open_store(url: str, timeout: float) -> tuple[Any, Any, str]:
    """(the obstore module, a store of the URL's bucket or container, the key)."""
    try:
        import obstore
    except ImportError as exc:
        raise MissingDependencyError(
            "object URLs need obstore: pip install 'memvid-py[s3]' (or [gcs], [azure]: "
            "the same client)") from exc
    scheme, bucket, key = parse_url(url)
    options: dict[str, Any] = {"timeout": timedelta(seconds=timeout),
                               "connect_timeout": timedelta(seconds=min(timeout, 5.0))}
    build = {"s3": _s3, "gs": _gcs, "az": _azure}[scheme]
    return obstore, build(bucket, options), key


def _s3(bucket: str, options: dict[str, Any]) -> Any:
    from obstore.store import S3Store

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and endpoint.startswith("http://"):
        options["allow_http"] = True
    kwargs: dict[str, Any] = {"endpoint": endpoint} if endpoint else {}
    return S3Store(bucket, client_options=options, retry_config={"max_retries": 0}, **kwargs)


def _gcs(bucket: str, options: dict[str, Any]) -> Any:
    from obstore.store import GCSStore

    kwargs: dict[str, Any] = {}
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:  # no credentials: the emulator's base URL in place of a service account
        base = emulator if "://" in emulator else f"http://{emulator}"
        kwargs["service_account_key"] = json.dumps({
            "gcs_base_url": base.rstrip("/"), "disable_oauth": True, "client_email": "",
            "private_key": "", "private_key_id": ""})
        options["allow_http"] = base.startswith("http://")
    return GCSStore(bucket, client_options=options, retry_config={"max_retries": 0}, **kwargs)


def _azure(container: str, options: dict[str, Any]) -> Any:
    from obstore.store import AzureStore

    if _azure_emulator():
        options["allow_http"] = True
    return AzureStore(container, client_options=options, retry_config={"max_retries": 0})


def _azure_emulator() -> bool:
    return os.environ.get("AZURE_STORAGE_USE_EMULATOR", "").lower() in ("1", "true", "yes")


def suffix_ranges(url: str) -> bool:
    """Whether the store serves the last N bytes of an object without knowing its size
    (Azure does not)."""
    return parse_url(url)[0] != "az"


# the most one conditional PUT may hold (obstore sends it whole, never in parts)
MAX_PUT_BYTES = {"s3": 5 << 30, "az": 5000 << 20}


def check_publishable(url: str) -> int:
    """The most bytes one conditional write to ``url`` may hold; InvalidInputError for a
    store this package does not publish to."""
    scheme = parse_url(url)[0]
    if scheme not in MAX_PUT_BYTES:
        raise InvalidInputError(
            f"publishing to {scheme}:// is not supported (reads are): upload the sealed "
            "file with 'gcloud storage cp --if-generation-match=GENERATION' (0 to create)")
    return MAX_PUT_BYTES[scheme]


__all__ = ["MAX_PUT_BYTES", "check_publishable", "endpoint_of", "open_store", "parse_url",
           "suffix_ranges"]
