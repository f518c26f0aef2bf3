"""Correlation of cosine similarity with human judgements (WordSim353, SimLex-999 layout).

Follows gensim's `KeyedVectors.evaluate_word_pairs` so numbers are comparable:
lines starting with `#` are comments; a line is `word1<delim>word2<delim>score`;
lines that do not parse (too few columns, score not a number — e.g. an
un-commented header) are skipped and counted; pairs with a word outside the first
`restrict_vocab` words are skipped and counted as out-of-vocabulary.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from scipy import stats

from jaxdl.errors import DataError
from jaxdl.evaluation.word_vectors import WordVectors


def evaluate_word_pairs(
    wv: WordVectors,
    path: str | os.PathLike,
    *,
    delimiter: str = "\t",
    case_insensitive: bool = True,
    restrict_vocab: int = 300000,
    encoding: str = "utf-8",
) -> dict[str, Any]:
    """Spearman and Pearson correlation between model cosine and gold similarity.

    Args:
        wv: word vectors, most frequent word first.
        path: pair file, lines `word1<delimiter>word2<delimiter>score[<delimiter>extra…]`.
        delimiter: column separator (tab in WordSim353 / SimLex-999 files).
        case_insensitive: compare upper-cased words; a case variant maps to its most
            frequent spelling.
        restrict_vocab: only the first N words count as in-vocabulary.
        encoding: text encoding of the file.

    Returns:
        dict with `spearman`, `spearman_pvalue`, `pearson`, `pearson_pvalue`, `pairs`
        (pairs scored), `oov` (pairs skipped as out-of-vocabulary), `oov_ratio`
        (oov / (pairs + oov)) and `invalid_lines` (lines skipped as unparsable).

    Raises:
        DataError: fewer than 2 pairs of the file could be scored.
    """
    vocab = wv.lookup_table(restrict_vocab, case_insensitive)
    unit = wv.unit_vectors
    gold, model = [], []
    oov = invalid = 0
    with open(path, encoding=encoding) as handle:
        for line in handle:
            if not line.strip() or line.startswith("#"):
                continue
            columns = line.rstrip("\r\n").split(delimiter)
            try:
                word_a, word_b, score = columns[0], columns[1], float(columns[2])
            except (IndexError, ValueError):
                invalid += 1
                continue
            if case_insensitive:
                word_a, word_b = word_a.upper(), word_b.upper()
            if word_a not in vocab or word_b not in vocab:
                oov += 1
                continue
            gold.append(score)
            model.append(float(np.dot(unit[vocab[word_a]], unit[vocab[word_b]])))
    if not gold:
        raise DataError(
            f"{path}: no word pair could be scored ({oov} out-of-vocabulary, {invalid} unparsable lines); "
            f"expected lines 'word1{delimiter!r}word2{delimiter!r}score' with words in the vocabulary"
        )
    if len(gold) < 2:  # scipy's correlations need two points
        raise DataError(f"{path}: only {len(gold)} word pair in the vocabulary ({oov} "
                        "out-of-vocabulary); expected at least 2 to correlate")
    spearman = stats.spearmanr(gold, model)
    pearson = stats.pearsonr(gold, model)
    return {
        "spearman": float(spearman.statistic),
        "spearman_pvalue": float(spearman.pvalue),
        "pearson": float(pearson.statistic),
        "pearson_pvalue": float(pearson.pvalue),
        "pairs": len(gold),
        "oov": oov,
        "oov_ratio": oov / (len(gold) + oov),
        "invalid_lines": invalid,
    }
