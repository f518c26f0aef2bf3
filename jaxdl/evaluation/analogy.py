"""Word analogies `a : b :: c : ?` by 3CosAdd, in the `questions-words.txt` format.

The semantics follow gensim's `KeyedVectors.evaluate_word_analogies` (itself the
`compute-accuracy` tool of the original word2vec), so numbers are comparable:

* only the first `restrict_vocab` words (the most frequent) are candidates, and a
  question with any word outside them is skipped and counted as out-of-vocabulary;
* with `case_insensitive`, words are upper-cased and a case variant maps to its most
  frequent spelling;
* the answer is the first of the 5 nearest words to unit(b̂ + ĉ − â) (â the unit
  vector of a) that is not one of the three question words.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jaxdl.errors import DataError
from jaxdl.evaluation.word_vectors import WordVectors

_CANDIDATES = 5  # gensim asks most_similar for topn=5 and takes the first allowed one
_QUERY_CHUNK = 512  # questions scored per matrix product, bounds memory to chunk × vocab


def _read_questions(path: str | os.PathLike, case_insensitive: bool) -> list[tuple[str, list[tuple[str, ...]]]]:
    """Sections of the analogy file as `(name, [(a, b, c, expected), ...])`."""
    sections: list[tuple[str, list[tuple[str, ...]]]] = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.startswith(": "):
                sections.append((line.lstrip(": ").strip(), []))
                continue
            words = line.split()
            if not words:
                continue
            if not sections:
                raise DataError(
                    f"{path}:{line_no}: question {line.strip()!r} comes before any section header; "
                    "expected a ': section-name' line first (questions-words.txt format)"
                )
            if len(words) != 4:
                raise DataError(
                    f"{path}:{line_no}: analogy line has {len(words)} words {words!r}, "
                    "expected 4 ('a b c expected')"
                )
            sections[-1][1].append(tuple(w.upper() for w in words) if case_insensitive else tuple(words))
    return sections


def _predict(wv: WordVectors, questions: np.ndarray, restrict_vocab: int) -> np.ndarray:
    """Top-5 candidate rows `[Q, 5]` for question rows `[Q, 3]` (a, b, c), question words excluded."""
    unit = wv.unit_vectors
    candidates = wv.vectors[:restrict_vocab]
    norms = np.linalg.norm(candidates, axis=1)
    norms = np.where(norms == 0, 1, norms)
    top = np.empty((len(questions), _CANDIDATES), dtype=np.int64)
    for start in range(0, len(questions), _QUERY_CHUNK):
        rows = questions[start : start + _QUERY_CHUNK]
        query = (unit[rows[:, 1]] + unit[rows[:, 2]] - unit[rows[:, 0]]) / 3.0
        query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-30)
        scores = (query @ candidates.T) / norms
        np.put_along_axis(scores, rows, -np.inf, axis=1)
        k = min(_CANDIDATES, scores.shape[1] - 1)
        best = np.argpartition(-scores, k, axis=1)[:, :_CANDIDATES]
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
        top[start : start + len(rows)] = np.take_along_axis(best, order, axis=1)
    return top


def evaluate_analogies(
    wv: WordVectors,
    path: str | os.PathLike,
    *,
    restrict_vocab: int = 30000,
    case_insensitive: bool = True,
) -> dict[str, Any]:
    """Accuracy of 3CosAdd on an analogy file (`questions-words.txt` format).

    The file has `: section-name` lines that start sections and lines of four words
    `a b c expected`; blank lines are ignored.

    Args:
        wv: word vectors, most frequent word first.
        path: the analogy file.
        restrict_vocab: only the first N words are candidates and allowed in questions.
        case_insensitive: compare upper-cased words (gensim's default).

    Returns:
        dict with `sections` (list of `{"section", "correct", "incorrect", "accuracy"}`),
        `total` (the same keys over all sections), `accuracy` (the total accuracy),
        `oov` (questions skipped as out-of-vocabulary), `questions` (all questions read)
        and `oov_ratio` (oov / questions).
    """
    vocab = wv.lookup_table(restrict_vocab, case_insensitive)
    sections = _read_questions(path, case_insensitive)
    known = [(name, [q for q in qs if all(w in vocab for w in q)]) for name, qs in sections]
    num_questions = sum(len(qs) for _, qs in sections)
    num_known = sum(len(qs) for _, qs in known)
    flat = [q for _, qs in known for q in qs]
    rows = np.array([[vocab[w] for w in q[:3]] for q in flat], dtype=np.int64).reshape(-1, 3)
    top = _predict(wv, rows, restrict_vocab) if len(flat) else np.zeros((0, _CANDIDATES), np.int64)

    results, cursor = [], 0
    for name, qs in known:
        correct = 0
        for question in qs:
            ignore, expected = set(question[:3]), question[3]
            predicted = None
            for row in top[cursor]:
                predicted = wv.words[row].upper() if case_insensitive else wv.words[row]
                if predicted in vocab and predicted not in ignore:
                    break
            correct += int(predicted == expected)
            cursor += 1
        results.append(_score(name, correct, len(qs) - correct))
    total_correct = sum(r["correct"] for r in results)
    total = _score("Total accuracy", total_correct, num_known - total_correct)
    return {
        "sections": results,
        "total": total,
        "accuracy": total["accuracy"],
        "oov": num_questions - num_known,
        "questions": num_questions,
        "oov_ratio": (num_questions - num_known) / num_questions if num_questions else 0.0,
    }


def _score(name: str, correct: int, incorrect: int) -> dict[str, Any]:
    answered = correct + incorrect
    return {
        "section": name,
        "correct": correct,
        "incorrect": incorrect,
        "accuracy": correct / answered if answered else 0.0,
    }
