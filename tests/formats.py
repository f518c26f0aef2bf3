"""Writers of fixture files in the exact real formats, shared by the tests.

IDX (MNIST's ``*-ubyte``, raw or gzipped), CIFAR-10/100 python-version pickles and
their ``.tar.gz``, CoNLL-U, fastText label lines and word2vec text/binary vectors.
Each writer follows the format's specification, not jaxdl's reader, so a reader
test cannot pass by sharing a bug with the writer.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import tarfile

import numpy as np

# ------------------------------------------------------------------------- IDX

_IDX_TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
                   np.float32: 0x0D, np.float64: 0x0E}

MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file exactly per the spec: 00 00 type ndim, big-endian uint32 sizes and data."""
    header = bytes([0, 0, _IDX_TYPE_CODES[array.dtype.type], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_mnist(directory, arrays: dict[str, np.ndarray], *, gz: bool) -> dict[str, np.ndarray]:
    """Write each ``{file name: array}`` as an IDX file in ``directory`` (``NAME.gz`` when
    ``gz``); returns ``arrays``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        content = idx_bytes(array)
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (directory / name).write_bytes(content)
    return arrays


def random_mnist(n_train: int = 5, n_test: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """The four MNIST files' arrays: uint8 images ``[N, 28, 28]`` and labels ``[N]`` (0..9)."""
    rng = np.random.default_rng(seed)
    return {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "train-labels-idx1-ubyte": rng.integers(0, 10, (n_train,), dtype=np.uint8),
            "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "t10k-labels-idx1-ubyte": rng.integers(0, 10, (n_test,), dtype=np.uint8)}


# ------------------------------------------------------------------------- CIFAR

CIFAR10_BATCHES = tuple(f"data_batch_{k}" for k in range(1, 6)) + ("test_batch",)
CIFAR10_LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                       "horse", "ship", "truck")


def cifar_batch(images: np.ndarray, labels: dict[bytes, object], name: str) -> dict:
    """A batch dict exactly like the official ones, from uint8 images ``[N, 32, 32, 3]``
    and ``{b"labels": [N]}`` (CIFAR-100: ``b"fine_labels"`` and ``b"coarse_labels"``)."""
    n = len(images)
    # Official layout per row: 1024 R values, 1024 G, 1024 B, each plane row-major.
    batch = {b"batch_label": name.encode(), b"data": images.transpose(0, 3, 1, 2).reshape(n, 3072),
             b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
    batch.update({key: [int(v) for v in values] for key, values in labels.items()})
    return batch


def random_cifar_batch(n: int, seed: int, label_keys: dict[bytes, int],
                       name: str = "fixture") -> tuple[dict, np.ndarray]:
    """A batch of ``n`` random images, each ``label_keys`` key drawn in ``0..num``; also
    returns the NHWC images."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = {key: rng.integers(0, num, n) for key, num in label_keys.items()}
    return cifar_batch(images, labels, name), images


def write_pickle(path, value) -> None:
    """``value`` pickled with protocol 2, as the official CIFAR files are."""
    path.write_bytes(pickle.dumps(value, protocol=2))


def write_cifar(directory, batches: dict[str, dict], meta: dict | None = None):
    """Write ``{file name: batch}`` (and ``batches.meta``) into ``directory``; returns it."""
    directory.mkdir(parents=True)
    for name, batch in batches.items():
        write_pickle(directory / name, batch)
    if meta is not None:
        write_pickle(directory / "batches.meta", meta)
    return directory


def cifar10_meta(per_batch: int) -> dict:
    """The official ``batches.meta`` of CIFAR-10."""
    return {b"num_cases_per_batch": per_batch, b"num_vis": 3072,
            b"label_names": [n.encode() for n in CIFAR10_LABEL_NAMES]}


def write_random_cifar10(root, per_batch: int = 3):
    """``root/cifar-10-batches-py/`` with 5 train batches and a test batch of random images;
    returns the directory and ``{file name: (images NHWC, labels)}``."""
    batches, expected = {}, {}
    for seed, name in enumerate(CIFAR10_BATCHES):
        batches[name], images = random_cifar_batch(per_batch, seed, {b"labels": 10}, name)
        expected[name] = (images, batches[name][b"labels"])
    return write_cifar(root / "cifar-10-batches-py", batches), expected


def make_tar_gz(source_dir, archive_path):
    """``source_dir`` archived under its own name, like the official ``*-python.tar.gz``."""
    with tarfile.open(archive_path, "w:gz") as archive:
        archive.add(source_dir, arcname=source_dir.name)
    return archive_path


# ------------------------------------------------------------------------- text

# A CoNLL-U file as Universal Dependencies writes it: sentence comments, a
# multiword token ("don't" = do + n't) and an empty node (8.1-style ID) with
# enhanced dependencies.
UD_ENGLISH_CONLLU = """\
# newdoc id = fixture-1
# sent_id = 1
# text = The dog ate the apple.
1\tThe\tthe\tDET\tDT\tDefinite=Def|PronType=Art\t2\tdet\t2:det\t_
2\tdog\tdog\tNOUN\tNN\tNumber=Sing\t3\tnsubj\t3:nsubj\t_
3\tate\teat\tVERB\tVBD\tMood=Ind|Tense=Past\t0\troot\t0:root\t_
4\tthe\tthe\tDET\tDT\tDefinite=Def|PronType=Art\t5\tdet\t5:det\t_
5\tapple\tapple\tNOUN\tNN\tNumber=Sing\t3\tobj\t3:obj\tSpaceAfter=No
6\t.\t.\tPUNCT\t.\t_\t3\tpunct\t3:punct\t_

# sent_id = 2
# text = I don't like cats.
1\tI\tI\tPRON\tPRP\tCase=Nom|Number=Sing|Person=1\t4\tnsubj\t4:nsubj\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\tMood=Ind|Tense=Pres\t4\taux\t4:aux\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t4:advmod\t_
4\tlike\tlike\tVERB\tVB\tVerbForm=Inf\t0\troot\t0:root\t_
5\tcats\tcat\tNOUN\tNNS\tNumber=Plur\t4\tobj\t4:obj\tSpaceAfter=No
6\t.\t.\tPUNCT\t.\t_\t4\tpunct\t4:punct\t_

# sent_id = 3
# text = Sue likes dogs and Bob cats.
1\tSue\tSue\tPROPN\tNNP\tNumber=Sing\t2\tnsubj\t2:nsubj|2.1:nsubj\t_
2\tlikes\tlike\tVERB\tVBZ\tNumber=Sing|Person=3\t0\troot\t0:root\t_
3\tdogs\tdog\tNOUN\tNNS\tNumber=Plur\t2\tobj\t2:obj\t_
4\tand\tand\tCCONJ\tCC\t_\t5\tcc\t2.1:cc\t_
5\tBob\tBob\tPROPN\tNNP\tNumber=Sing\t2\tconj\t2.1:nsubj\t_
5.1\tlikes\tlike\tVERB\tVBZ\t_\t_\t_\t2:conj\tCopyOf=2
6\tcats\tcat\tNOUN\tNNS\tNumber=Plur\t5\torphan\t2.1:obj\tSpaceAfter=No
7\t.\t.\tPUNCT\t.\t_\t2\tpunct\t2:punct\t_

"""


def write_conllu_rows(path, sentences, prefix: str) -> None:
    """Write ``(form, upos)`` sentences as CoNLL-U with sent_id/text comments."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for number, sentence in enumerate(sentences, 1):
            f.write(f"# sent_id = {prefix}-{number}\n# text = {' '.join(w for w, _ in sentence)}\n")
            for i, (form, upos) in enumerate(sentence, 1):
                f.write(f"{i}\t{form}\t_\t{upos}\t_\t_\t0\tdep\t_\t_\n")
            f.write("\n")


def fasttext_line(labels, words) -> str:
    """One fastText line: ``__label__X`` for each label, then the words."""
    return " ".join([f"__label__{label}" for label in labels] + list(words)) + "\n"


def vector_lines(words, vectors: np.ndarray, trailing: str = "") -> str:
    """``word v1 v2 ...`` lines (GloVe; word2vec text without its header), exact in text."""
    return "".join(f"{w} {' '.join(repr(float(v)) for v in row)}{trailing}\n"
                   for w, row in zip(words, vectors))


def word2vec_text(words, vectors: np.ndarray, trailing: str = "") -> str:
    """The word2vec text format: a ``count dim`` header, then one line per word (fastText's
    ``.vec`` ends each line with ``trailing=" "``)."""
    return f"{len(words)} {vectors.shape[1]}\n" + vector_lines(words, vectors, trailing)


def word2vec_binary(words, vectors: np.ndarray) -> bytes:
    """The word2vec C tool's binary format: the text header, then per word its UTF-8 bytes,
    a space, ``dim`` little-endian float32 values and a newline."""
    rows = [w.encode("utf-8") + b" " + np.asarray(row, "<f4").tobytes() + b"\n"
            for w, row in zip(words, vectors)]
    return f"{len(words)} {vectors.shape[1]}\n".encode() + b"".join(rows)
