"""The standard evaluation of word vectors: WordSim353, SimLex-999 and the Google analogies.

One function for jaxdl's vectors and any other library's (the gensim benchmark
scores both with it), each score reported with its in-vocabulary count.
"""

from __future__ import annotations

import os

from jaxdl.errors import DataError
from jaxdl.evaluation.analogy import evaluate_analogies
from jaxdl.evaluation.word_similarity import evaluate_word_pairs
from jaxdl.evaluation.word_vectors import WordVectors

# The files of gensim's test data (gensim.test.utils.datapath) by benchmark name.
GENSIM_TEST_FILES = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt",
                     "analogies": "questions-words.txt"}


def benchmark_files(paths: dict[str, str] | None = None, *, where: str = "config.eval") -> dict[str, str]:
    """The benchmark files to score: `paths[name]`, or gensim's copy where empty and gensim is installed.

    Args:
        paths: benchmark name (a key of `GENSIM_TEST_FILES`) -> file path or "".
        where: named in errors (the config section the paths came from).

    Raises:
        DataError: a configured path does not exist.
    """
    paths = paths or {}
    files = {}
    for name, default in GENSIM_TEST_FILES.items():
        path = paths.get(name, "")
        if not path:
            try:
                from gensim.test.utils import datapath
            except ImportError:
                continue
            path = datapath(default)
        if not os.path.exists(path):
            kind = "questions-words" if name == "analogies" else "word-pair"
            raise DataError(f"{where}.{name}={path!r}: no such file; expected a {kind} file")
        files[name] = path
    return files


def evaluate_word_vectors(vectors: WordVectors, files: dict[str, str], *,
                          analogy_restrict_vocab: int = 30000) -> dict:
    """Spearman ρ per pair file and 3CosAdd accuracy on the analogy file.

    Args:
        vectors: the word vectors, most frequent first.
        files: from `benchmark_files`.
        analogy_restrict_vocab: candidate answers are the first N words (gensim's default 30000).

    Returns:
        {name: {"file", "spearman", "pearson", "pairs", "oov", "oov_ratio"}} for pair
        files (spearman None and an "error" when fewer than 2 pairs are in the vocabulary) and
        {"analogies": {"file", "accuracy", "questions", "oov", "oov_ratio", "sections"}}.
    """
    results = {}
    for name, path in files.items():
        if name == "analogies":
            scores = evaluate_analogies(vectors, path, restrict_vocab=analogy_restrict_vocab)
            results[name] = {"file": path, **{k: scores[k] for k in ("accuracy", "questions", "oov",
                                                                     "oov_ratio", "sections")}}
            continue
        try:
            scores = evaluate_word_pairs(vectors, path)
        except DataError as err:  # under 2 pairs in the vocabulary: report it, it is a result
            results[name] = {"file": path, "spearman": None, "pairs": 0, "error": str(err)}
            continue
        results[name] = {"file": path, **{k: scores[k] for k in ("spearman", "pearson", "pairs", "oov",
                                                                  "oov_ratio")}}
    return results
