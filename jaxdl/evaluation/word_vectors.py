"""A small, gensim-`KeyedVectors`-like container of word vectors with cosine search.

Words are kept in the order given, which by convention (word2vec files, gensim)
is descending corpus frequency: "the first N words" means "the N most frequent".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxdl.errors import DataError


class WordVectors:
    """Word vectors `[V, D]` with a word → row index and cosine nearest neighbours.

    Args:
        words: the V words, most frequent first (duplicates are an error).
        vectors: float array `[V, D]`; stored as float32.

    Attributes:
        words: list of V words.
        vectors: float32 `[V, D]`.
        index: dict word → row.
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise DataError(
                f"WordVectors: vectors have shape {vectors.shape}, expected "
                f"[{len(words)}, D] (one row per word)"
            )
        self.words: list[str] = list(words)
        self.vectors: np.ndarray = vectors
        self.index: dict[str, int] = {}
        for row, word in enumerate(self.words):
            if word in self.index:
                raise DataError(
                    f"WordVectors: word {word!r} appears twice (rows {self.index[word]} and {row}); "
                    "expected unique words"
                )
            self.index[word] = row
        self._unit: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        """The vector `[D]` of `word` (KeyError if absent)."""
        return self.vectors[self.index[word]]

    @property
    def dim(self) -> int:
        """Vector dimension D."""
        return int(self.vectors.shape[1])

    @property
    def unit_vectors(self) -> np.ndarray:
        """Rows scaled to unit L2 norm, float32 `[V, D]` (zero rows stay zero); cached."""
        if self._unit is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._unit = (self.vectors / np.where(norms == 0, 1, norms)).astype(np.float32)
        return self._unit

    def lookup_table(self, restrict_vocab: int | None = None, case_insensitive: bool = False) -> dict[str, int]:
        """Word → row over the first `restrict_vocab` words, for evaluation look-ups.

        With `case_insensitive`, keys are upper-cased and a case variant maps to its
        earliest (most frequent) spelling, as gensim's evaluations do.
        """
        keys = self.words[: restrict_vocab or len(self)]
        # Reversed so that the earliest (most frequent) case variant overwrites the others.
        return {(k.upper() if case_insensitive else k): self.index[k] for k in reversed(keys)}

    def similarity(self, word_a: str, word_b: str) -> float:
        """Cosine similarity of two in-vocabulary words."""
        unit = self.unit_vectors
        return float(np.dot(unit[self.index[word_a]], unit[self.index[word_b]]))

    def most_similar(
        self, word_or_vector: str | np.ndarray, topn: int = 10, *, restrict_vocab: int | None = None
    ) -> list[tuple[str, float]]:
        """The `topn` words nearest by cosine to a word (itself excluded) or a vector `[D]`.

        Args:
            word_or_vector: a vocabulary word, or a query vector `[D]`.
            topn: number of neighbours returned.
            restrict_vocab: search only the first (most frequent) N words.

        Returns:
            list of `(word, cosine)` pairs, most similar first.
        """
        exclude: set[int] = set()
        if isinstance(word_or_vector, str):
            if word_or_vector not in self.index:
                raise KeyError(f"word {word_or_vector!r} is not in the vocabulary of {len(self)} words")
            exclude.add(self.index[word_or_vector])
            query = self.unit_vectors[self.index[word_or_vector]]
        else:
            query = np.asarray(word_or_vector, dtype=np.float32)
            if query.shape != (self.dim,):
                raise DataError(f"most_similar: query vector has shape {query.shape}, expected ({self.dim},)")
            norm = np.linalg.norm(query)
            query = query / norm if norm > 0 else query
        candidates = self.unit_vectors[: restrict_vocab or len(self)]
        scores = candidates @ query
        order = np.argsort(-scores, kind="stable")[: topn + len(exclude)]
        return [(self.words[i], float(scores[i])) for i in order if i not in exclude][:topn]
