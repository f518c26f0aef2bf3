"""Word-vector evaluation and word2vec file interchange, checked against gensim."""

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from jaxdl.errors import DataError
from jaxdl.evaluation.analogy import evaluate_analogies
from jaxdl.evaluation.word2vec_format import load_word2vec_format, save_word2vec_format
from jaxdl.evaluation.word_similarity import evaluate_word_pairs
from jaxdl.evaluation.word_vectors import WordVectors


def _eval_file_words(limit_questions: int = 4000) -> list[str]:
    """Words of the gensim evaluation files, with some case variants, in a fixed order."""
    words: dict[str, None] = {}
    with open(datapath("questions-words.txt")) as handle:
        for line_no, line in enumerate(handle):
            if line_no > limit_questions:
                break
            if not line.startswith(":"):
                words.update(dict.fromkeys(line.split()))
    for name in ("wordsim353.tsv", "simlex999.txt"):
        with open(datapath(name)) as handle:
            for line in handle:
                if not line.startswith("#"):
                    words.update(dict.fromkeys(line.split("\t")[:2]))
    ordered = list(words)
    rng = np.random.default_rng(0)
    rng.shuffle(ordered)
    # Lower-case copies of some capitalised words exercise the case-insensitive mapping.
    variants = [w.lower() for w in ordered[:300] if w.lower() != w and w.lower() not in words]
    return ordered[:-100] + variants  # the last 100 words stay out of vocabulary


@pytest.fixture(scope="module")
def random_vectors():
    words = _eval_file_words()
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((len(words), 16)).astype(np.float32)
    # Plant a noisy per-section offset (b = a + offset) so that some analogies are right.
    index = {w: i for i, w in enumerate(words)}
    offsets, section, planted = 2 * rng.standard_normal((20, 16)), -1, set()
    with open(datapath("questions-words.txt")) as handle:
        for line in handle:
            if line.startswith(":"):
                section += 1
                continue
            a, b, c, d = line.split()
            for x, y in ((a, b), (c, d)):
                if x in index and y in index and y not in planted:
                    vectors[index[y]] = vectors[index[x]] + offsets[section] + 0.5 * rng.standard_normal(16)
                    planted.add(y)
    kv = KeyedVectors(16)
    kv.add_vectors(words, vectors)
    return WordVectors(words, vectors), kv


def test_most_similar_matches_gensim(random_vectors):
    wv, kv = random_vectors
    ours = wv.most_similar(wv.words[3], topn=5)
    theirs = kv.most_similar(wv.words[3], topn=5)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-6)
    assert wv.words[3] in wv and "not-a-word-xyz" not in wv


@pytest.mark.parametrize("restrict_vocab", [2000, 30000])
def test_analogies_match_gensim(random_vectors, restrict_vocab):
    wv, kv = random_vectors
    ours = evaluate_analogies(wv, datapath("questions-words.txt"), restrict_vocab=restrict_vocab)
    score, sections = kv.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=restrict_vocab)
    assert ours["accuracy"] == pytest.approx(score, abs=1e-6)
    assert 0.1 < ours["accuracy"] < 0.9  # a meaningful comparison, not all-wrong
    theirs_total = sections[-1]
    assert ours["total"]["correct"] == len(theirs_total["correct"])
    assert ours["total"]["incorrect"] == len(theirs_total["incorrect"])
    assert [s["section"] for s in ours["sections"]] == [s["section"] for s in sections[:-1]]
    assert [s["correct"] for s in ours["sections"]] == [len(s["correct"]) for s in sections[:-1]]
    assert ours["questions"] == 19544
    assert ours["oov"] == 19544 - len(theirs_total["correct"]) - len(theirs_total["incorrect"])


def test_analogies_on_planted_offsets(tmp_path):
    words = ["king", "queen", "man", "woman", "apple", "Paris"]
    base = np.eye(6, dtype=np.float32)
    vectors = base.copy()
    vectors[1] = base[0] + base[3] - base[2]  # queen = king + woman - man
    path = tmp_path / "q.txt"
    path.write_text(": royals\nman woman king queen\nman woman king apple\n: cities\nParis France Rome Italy\n")
    result = evaluate_analogies(WordVectors(words, vectors), path)
    assert result["sections"][0] == {"section": "royals", "correct": 1, "incorrect": 1, "accuracy": 0.5}
    assert result["oov"] == 1 and result["questions"] == 3
    assert result["accuracy"] == 0.5


def test_analogy_file_errors(tmp_path, random_vectors):
    wv, _ = random_vectors
    path = tmp_path / "q.txt"
    path.write_text("a b c d\n")
    with pytest.raises(DataError, match=r"q.txt:1: .*before any section header"):
        evaluate_analogies(wv, path)
    path.write_text(": s\na b c\n")
    with pytest.raises(DataError, match=r"q.txt:2: analogy line has 3 words"):
        evaluate_analogies(wv, path)


@pytest.mark.parametrize("name", ["wordsim353.tsv", "simlex999.txt"])
def test_word_pairs_match_gensim(random_vectors, name):
    wv, kv = random_vectors
    ours = evaluate_word_pairs(wv, datapath(name))
    pearson, spearman, oov_percent = kv.evaluate_word_pairs(datapath(name))
    assert ours["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
    assert ours["pearson"] == pytest.approx(pearson.statistic, abs=1e-6)
    assert ours["oov_ratio"] * 100 == pytest.approx(oov_percent, abs=1e-9)
    assert ours["oov"] > 0


def test_word_pairs_extra_columns_and_comments(tmp_path):
    wv = WordVectors(["a", "b", "c"], np.array([[1, 0], [1, 0.2], [0, 1]], np.float32))
    path = tmp_path / "pairs.tsv"
    path.write_text("# comment\nword1\tword2\tPOS\nA\tb\t9.0\tN\na\tc\t1.0\tN\nb\tc\t5.0\tN\nb\tzz\t3\n")
    result = evaluate_word_pairs(wv, path)
    assert result["spearman"] == pytest.approx(1.0)
    assert (result["pairs"], result["oov"], result["invalid_lines"]) == (3, 1, 1)
    path.write_text("zz\tyy\t1.0\n")
    with pytest.raises(DataError, match=r"pairs.tsv: no word pair could be scored \(1 out-of-vocabulary"):
        evaluate_word_pairs(wv, path)


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_reads_jaxdl_files(tmp_path, random_vectors, binary):
    wv, _ = random_vectors
    path = tmp_path / "vectors.bin"
    save_word2vec_format(path, wv.words, wv.vectors, binary=binary)
    kv = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert kv.index_to_key == wv.words
    if binary:
        assert kv.vectors.tobytes() == wv.vectors.tobytes()
    else:
        np.testing.assert_array_equal(kv.vectors, wv.vectors)  # shortest repr round-trips float32


@pytest.mark.parametrize("binary", [False, True])
def test_jaxdl_reads_gensim_files(tmp_path, random_vectors, binary):
    _, kv = random_vectors
    path = tmp_path / "gensim.vec"
    kv.save_word2vec_format(str(path), binary=binary)
    loaded = load_word2vec_format(path, binary=binary)
    assert loaded.words == kv.index_to_key
    if binary:
        assert loaded.vectors.tobytes() == kv.vectors.tobytes()
    else:
        np.testing.assert_allclose(loaded.vectors, kv.vectors, rtol=1e-6)
    assert len(load_word2vec_format(path, binary=binary, limit=7)) == 7


def test_c_tool_layout_with_trailing_spaces_and_newlines(tmp_path):
    vectors = np.array([[0.5, -1.25], [3.0, 0.125]], dtype=np.float32)
    text = tmp_path / "c.txt"
    text.write_bytes(b"2 2\n</s> 0.500000 -1.250000 \nk\xc3\xb6nig 3.000000 0.125000 \n")
    loaded = load_word2vec_format(text)
    assert loaded.words == ["</s>", "k\u00f6nig"]
    np.testing.assert_array_equal(loaded.vectors, vectors)
    binary = tmp_path / "c.bin"
    binary.write_bytes(b"2 2\n</s> " + vectors[0].tobytes() + b"\nk\xc3\xb6nig " + vectors[1].tobytes() + b"\n")
    assert load_word2vec_format(binary, binary=True).vectors.tobytes() == vectors.tobytes()


def test_malformed_word2vec_files(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("two 3\n")
    with pytest.raises(DataError, match=r"bad.txt:1: word2vec header is b'two 3\\n', expected two integers"):
        load_word2vec_format(path)
    path.write_text("2 3\nthe 1 2 3\nof 1 2\n")
    with pytest.raises(DataError, match=r"bad.txt:3: line has 2 values after the word 'of', expected 3"):
        load_word2vec_format(path)
    path.write_text("3 3\nthe 1 2 3\n")
    with pytest.raises(DataError, match=r"bad.txt:3: file ends after 1 vectors, header promised 3"):
        load_word2vec_format(path)
    path.write_text("1 2\nthe 1 x\n")
    with pytest.raises(DataError, match=r"bad.txt:2: a value of word 'the' is not a number"):
        load_word2vec_format(path)
    path.write_bytes(b"2 2\nthe " + np.zeros(2, np.float32).tobytes() + b"\nof \x00\x00")
    with pytest.raises(DataError, match=r"bad.txt: record 2 .*file ends after 1 of the 2 vectors"):
        load_word2vec_format(path, binary=True)
