"""ForeignEmbedder: an embedder of another library seen through the Embedder protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError
from .base import as_matrix, check_texts

if TYPE_CHECKING:
    import numpy


class ForeignEmbedder:
    """Wraps ``embed_documents``/``embed_query`` callables that return lists of floats.

    Args:
        name: identity recorded in memory files; name the model, not the library.
        embed_documents: ``list[str] -> list[list[float]]``.
        embed_query: ``str -> list[float]``.
        dim: vector dimension; when None it is measured by embedding one query now.
        source: the wrapped object, kept for ``repr`` and round trips.
    """

    def __init__(self, name: str, embed_documents: Callable[[list[str]], Any],
                 embed_query: Callable[[str], Any], *, dim: int | None = None,
                 source: Any = None) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidInputError("the embedder needs a non-empty name= naming its model "
                                    "(it is recorded in memory files)")
        self.name = name
        self.source = source
        self._embed_documents = embed_documents
        self._embed_query = embed_query
        if dim is None:
            dim = len(embed_query("dimension probe"))
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise InvalidInputError(f"dim must be a positive int, got {dim!r}")
        self.dim = dim

    def __repr__(self) -> str:
        return f"ForeignEmbedder(name={self.name!r}, dim={self.dim}, source={self.source!r})"

    def embed_documents(self, texts: Sequence[str]) -> numpy.ndarray:
        texts = check_texts(texts)
        if not texts:
            return as_matrix([], 0, self.dim, self.name)
        return as_matrix(self._embed_documents(texts), len(texts), self.dim, self.name)

    def embed_query(self, text: str) -> numpy.ndarray:
        if not isinstance(text, str):
            raise InvalidInputError(f"embed_query takes a str, got {type(text).__name__}")
        return as_matrix([self._embed_query(text)], 1, self.dim, self.name)[0]
