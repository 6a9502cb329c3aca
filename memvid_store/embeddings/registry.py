"""Choosing an embedder by name: ``default_embedder()`` and ``get_embedder(spec)``."""

from __future__ import annotations

import re
import threading

from ..errors import ConfigError
from .base import Embedder
from .minilm import BUNDLED_NAME

SPECS = ("default", "minilm", "hash", "hash:<dim>")
_HASH_SPEC = re.compile(r"hash(?:[:-]([0-9]+))?")  # "hash", "hash:<dim>", recorded "hash-<dim>"

_default: Embedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> Embedder:
    """The default real model (all-MiniLM-L6-v2, int8), one shared instance per process.

    Constructing it is cheap; the model loads on the first embed.

    Raises:
        EmbedderUnavailableError: the ``embed`` extra is not installed.
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                from .minilm import MiniLMEmbedder

                _default = MiniLMEmbedder()
    return _default


def get_embedder(spec: str = "default") -> Embedder:
    """An embedder by spec: ``"default"`` or ``"minilm"`` (the real model, shared),
    ``"hash"`` (``HashEmbedder(384)``) or ``"hash:<dim>"``.

    The names files record are accepted too, so ``get_embedder(mem.embedder_info["name"])``
    gives back the embedder a file was made with: ``"all-MiniLM-L6-v2/int8"``,
    ``"hash-<dim>"``.

    Raises:
        ConfigError: unknown spec.
        EmbedderUnavailableError: the real model's packages are not installed.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"embedder spec must be a str, one of {', '.join(SPECS)}; got {spec!r}")
    key = spec.strip().lower()
    if key in ("default", "minilm", BUNDLED_NAME.lower()):
        return default_embedder()
    hashed = _HASH_SPEC.fullmatch(key)
    if hashed:
        from .hashing import HashEmbedder

        return HashEmbedder(int(hashed[1] or 384))
    raise ConfigError(f"unknown embedder spec {spec!r}: use one of {', '.join(SPECS)} "
                      f"(or a recorded name: {BUNDLED_NAME}, hash-<dim>)")
