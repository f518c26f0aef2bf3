"""Text data: tokenizer, Vocab, padding, bucketing, readers, embedded corpus."""

import json

import numpy as np
import pytest

from formats import UD_ENGLISH_CONLLU
from jaxdl.data.stdlib_corpus import embedded_corpus, embedded_labelled_sentences, split_labelled
from jaxdl.data.text import SPECIALS, Vocab, bucket_batches, encode_chars, pad_batch, tokenize
from jaxdl.data.formats.conllu import read_conllu, read_conllu_sentences, write_conllu
from jaxdl.data.formats.fasttext import read_fasttext
from jaxdl.data.formats.plain_text import read_corpus
from jaxdl.errors import ConfigError, DataError

# Real CoNLL-U (UD v2): comments, a multiword token "del" = "de" + "el", and an
# empty node 3.1 as in enhanced-dependency treebanks. Columns are tab-separated.
CONLLU_TEXT = (
    "# newdoc id = test-doc\n"
    "# sent_id = s1\n"
    "# text = Vino del mercado.\n"
    "1\tVino\tvenir\tVERB\t_\tMood=Ind\t0\troot\t0:root\t_\n"
    "2-3\tdel\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "2\tde\tde\tADP\t_\t_\t4\tcase\t4:case\t_\n"
    "3\tel\tel\tDET\t_\tDefinite=Def\t4\tdet\t4:det\t_\n"
    "3.1\tvino\tvenir\tVERB\t_\t_\t_\t_\t0:root\tCopyOf=1\n"
    "4\tmercado\tmercado\tNOUN\t_\t_\t1\tobl\t1:obl\tSpaceAfter=No\n"
    "5\t.\t.\tPUNCT\t_\t_\t1\tpunct\t1:punct\t_\n"
    "\n"
    "# sent_id = s2\n"
    "# text = The dog ate.\n"
    "1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n"
    "2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_\n"
    "3\tate\teat\tVERB\tVBD\t_\t0\troot\t_\tSpaceAfter=No\n"
    "4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_\n"
    "\n"
)


def test_tokenize_splits_punctuation_and_lowercases_unicode():
    assert tokenize("Don't stop, Zoë! Ça va?") == ["don't", "stop", ",", "zoë", "!", "ça", "va", "?"]
    assert tokenize("Hello, World.", lower=False) == ["Hello", ",", "World", "."]
    assert tokenize("state-of-the-art (3.5%)") == ["state-of-the-art", "(", "3", ".", "5", "%", ")"]


def test_ascii_fast_path_gives_the_general_patterns_tokens():
    import random

    from jaxdl.data.text import token_pattern

    # Every ASCII character (controls such as \x1c, which str.isspace counts, included),
    # apostrophes and hyphens inside, around and between words, digits and underscores.
    every_char = "".join(map(chr, range(128)))
    texts = [every_char, "Don't -stop- 'em o'clock x--y a-b-c_1 it's' 'tis _x_ 3-4 a'b-c''d",
             "--'-'", "x'", "'x", "\x1cword\x1dword\x1e\x1f end"]
    rng = random.Random(0)
    alphabet = "ab1_ '-.,!\t\n\x0b\x1c"
    texts += ["".join(rng.choice(alphabet) for _ in range(40)) for _ in range(300)]
    for text in texts:
        for lower in (True, False):
            general = token_pattern().findall(text.lower() if lower else text)
            assert tokenize(text, lower=lower) == general, repr(text)
    # A non-ASCII line still takes the general path (and its NFC step).
    assert tokenize("Cafe\u0301 don\u2019t") == ["café", "don\u2019t"]


def test_vocab_specials_ordering_min_count_and_max_size():
    sentences = [["b", "a", "a"], ["c", "b", "a"], ["d"]]
    vocab = Vocab.build(sentences, min_count=2)
    # Counts a=3, b=2 (c, d seen once are dropped); specials come first.
    assert vocab.tokens == ["<pad>", "<unk>", "<s>", "</s>", "a", "b"]
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2, 3)
    assert vocab.encode(["a", "zzz", "b"], add_bos=True, add_eos=True).tolist() == [2, 4, 1, 5, 3]
    assert vocab.decode([2, 4, 5, 0, 0]) == ["<s>", "a", "b"]
    # c and d tie at count 1; ties go to the smaller token, so c takes the last slot.
    small = Vocab.build(sentences, max_size=7)
    assert len(small) == 7 and small.tokens[4:] == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="max_size=2"):
        Vocab.build(sentences, max_size=2)


def test_vocab_save_load_round_trip_is_readable_json(tmp_path):
    vocab = Vocab.build([["über", "café", "über"]])
    path = tmp_path / "vocab.json"
    vocab.save(path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["tokens"] == list(SPECIALS) + ["über", "café"]
    loaded = Vocab.load(path)
    assert loaded.tokens == vocab.tokens and loaded.counts == [0, 0, 0, 0, 2, 1]
    (tmp_path / "bad.json").write_text('{"tokens": ["a"]}', encoding="utf-8")
    with pytest.raises(DataError, match="bad.json: not a jaxdl vocabulary"):
        Vocab.load(tmp_path / "bad.json")


def test_pad_batch_and_char_encoding():
    ids, mask = pad_batch([[5, 6, 7], [8]])
    assert ids.dtype == np.int32 and ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.dtype == np.float32 and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = pad_batch([[5, 6, 7], [8]], max_len=2)
    assert ids.tolist() == [[5, 6], [8, 0]] and mask.tolist() == [[1, 1], [1, 0]]
    char_vocab = Vocab.build([list("abc")])  # a=4, b=5, c=6
    chars, char_mask = encode_chars([["ab", "c"], ["cab"]], char_vocab)
    assert chars.shape == (2, 2, 3)
    assert chars.tolist() == [[[4, 5, 0], [6, 0, 0]], [[6, 4, 5], [0, 0, 0]]]
    assert char_mask.sum(axis=-1).tolist() == [[2, 1], [3, 0]]


def test_bucket_batches_is_deterministic_complete_and_groups_lengths():
    lengths = np.random.default_rng(0).integers(1, 100, size=103)
    first = bucket_batches(lengths, 8, seed=3, epoch=1, pool_batches=4)
    again = bucket_batches(lengths, 8, seed=3, epoch=1, pool_batches=4)
    other_epoch = bucket_batches(lengths, 8, seed=3, epoch=2, pool_batches=4)
    assert [b.tolist() for b in first] == [b.tolist() for b in again]
    assert [b.tolist() for b in first] != [b.tolist() for b in other_epoch]
    assert sorted(np.concatenate(first).tolist()) == list(range(103))
    # Sorting within pools makes batches far tighter than random batches (spread ~90).
    mean_spread = np.mean([np.ptp(lengths[b]) for b in first])
    assert mean_spread < 30
    assert all(len(b) == 8 for b in bucket_batches(lengths, 8, seed=3, epoch=1, drop_last=True))


def test_conllu_reads_words_and_tags_skipping_ranges_and_empty_nodes(tmp_path):
    path = tmp_path / "es.conllu"
    path.write_bytes(CONLLU_TEXT.encode("utf-8"))
    assert read_conllu(path) == [
        [("Vino", "VERB"), ("de", "ADP"), ("el", "DET"), ("mercado", "NOUN"), (".", "PUNCT")],
        [("The", "DET"), ("dog", "NOUN"), ("ate", "VERB"), (".", "PUNCT")],
    ]
    sentences = read_conllu_sentences(path)
    assert sentences[0].comments == ["# newdoc id = test-doc", "# sent_id = s1", "# text = Vino del mercado."]
    english = tmp_path / "en.conllu"
    english.write_bytes(UD_ENGLISH_CONLLU.encode("utf-8"))
    sentences = read_conllu(english)
    assert sentences[1] == [("I", "PRON"), ("do", "AUX"), ("n't", "PART"), ("like", "VERB"),
                            ("cats", "NOUN"), (".", "PUNCT")]  # the range row 2-3 is not a word
    assert [w for w, _ in sentences[2]] == ["Sue", "likes", "dogs", "and", "Bob", "cats", "."]  # no 5.1


@pytest.mark.parametrize("text", [CONLLU_TEXT, UD_ENGLISH_CONLLU], ids=["es", "en"])
def test_conllu_write_round_trips_byte_for_byte(tmp_path, text):
    source, copy = tmp_path / "in.conllu", tmp_path / "out.conllu"
    source.write_bytes(text.encode("utf-8"))
    write_conllu(copy, read_conllu_sentences(source))
    assert copy.read_bytes() == source.read_bytes()
    # Plain (FORM, UPOS) lists are written with IDs from 1 and read back the same.
    tagged = read_conllu(source)
    write_conllu(tmp_path / "tagged.conllu", tagged)
    assert read_conllu(tmp_path / "tagged.conllu") == tagged


def test_conllu_wrong_column_count_names_file_and_line(tmp_path):
    bad = CONLLU_TEXT.replace("3\tate\teat\tVERB\tVBD\t_\t0\troot\t_\tSpaceAfter=No", "3\tate\teat\tVERB")
    path = tmp_path / "bad.conllu"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.conllu:16: found 4 tab-separated columns, expected 10"):
        read_conllu(path)
    path.write_text("x1\tThe\tthe\tDET\t_\t_\t0\troot\t_\t_\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.conllu:1: ID 'x1' is not a word index"):
        read_conllu(path)


def test_fasttext_labels_first_any_number_and_custom_prefix(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(
        "__label__sauce __label__cheese How much does potato starch affect a cheese sauce?\n"
        "\n"
        "__label__baking Dangerous pathogens\tcapable of growing?\n",
        encoding="utf-8",
    )
    texts, labels = read_fasttext(path)
    assert texts == ["How much does potato starch affect a cheese sauce?", "Dangerous pathogens capable of growing?"]
    assert labels == [["sauce", "cheese"], ["baking"]]
    custom = tmp_path / "custom.txt"
    custom.write_text("#pos great film\n#neg dull\n", encoding="utf-8")
    assert read_fasttext(custom, label_prefix="#") == (["great film", "dull"], [["pos"], ["neg"]])
    (tmp_path / "nolabel.txt").write_text("__label__a ok\nno label here\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"nolabel\.txt:2: expected one or more labels like '__label__X'"):
        read_fasttext(tmp_path / "nolabel.txt")


def test_non_utf8_bytes_say_which_encoding_to_pass(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("__label__en first line\n__label__fr caf\xe9 cr\xe8me\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.txt:2: byte offset 38 \(byte b'\\xe9'\) is not valid "
                       r"utf-8; if the file uses another encoding, pass it, e\.g\. encoding='latin-1'"):
        read_fasttext(path)
    for reader in (read_corpus, read_conllu):
        with pytest.raises(DataError, match="latin\\.txt:2: .*pass it, e\\.g\\. encoding='latin-1'"):
            reader(path)
    assert read_fasttext(path, encoding="latin-1") == (["first line", "café crème"], [["en"], ["fr"]])


def test_read_corpus_directory_is_sorted_and_skips_hidden(tmp_path):
    (tmp_path / "b.txt").write_text("Second file.\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("First line!\n\nThen more.\n", encoding="utf-8")
    (tmp_path / ".hidden").write_text("never read\n", encoding="utf-8")
    assert read_corpus(tmp_path) == [["first", "line", "!"], ["then", "more", "."], ["second", "file", "."]]
    with pytest.raises(DataError, match="no such file or directory"):
        read_corpus(tmp_path / "missing")


def test_embedded_corpus_is_deterministic_and_sizeable():
    first, second = embedded_corpus(), embedded_corpus()
    assert first == second
    num_tokens = sum(len(s) for s in first)
    assert len(first) > 5_000 and num_tokens > 100_000
    assert all(len(s) >= 4 for s in first)
    assert ["regular", "expressions", "can", "contain", "both", "special", "and", "ordinary", "characters", "."] in first


def test_embedded_labelled_sentences_have_ten_roughly_balanced_classes():
    sentences, labels = embedded_labelled_sentences()
    assert (sentences, labels) == embedded_labelled_sentences()
    counts = {label: labels.count(label) for label in set(labels)}
    assert len(counts) == 10 and max(counts.values()) <= 400 and min(counts.values()) >= 50
    (train_x, train_y), (test_x, test_y) = split_labelled(sentences, labels, test_fraction=0.2, seed=0)
    assert len(train_x) + len(test_x) == len(sentences)
    assert set(test_y) == set(counts) and abs(len(test_x) - 0.2 * len(sentences)) <= 10
    assert split_labelled(sentences, labels, seed=0)[1][1] == test_y
