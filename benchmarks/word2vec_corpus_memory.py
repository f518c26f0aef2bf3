"""Peak memory of reading a word2vec corpus as a stream: a generated corpus of N words in /tmp.

    python -m benchmarks.word2vec_corpus_memory [--words 100000000] [--out FILE.json]

Writes N words (Zipf-like over 50,000 distinct words, exponent 1.0, 20 words a
sentence, one sentence a line, plain text) to a temporary file, then in a fresh
subprocess measures the resident set before and after
`Word2VecCorpus.from_files(path)` (one streamed pass: reading, vocabulary,
encoding) with `getrusage`'s peak, and deletes the file. Reports the peak growth
over the interpreter's baseline per corpus word and the result's own bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

VOCABULARY, SENTENCE = 50_000, 20


def write_corpus(path: str, words: int, seed: int = 0) -> None:
    """`words` tokens, Zipf-distributed word ids ("w0" most frequent), SENTENCE a line."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, VOCABULARY + 1)
    names = np.array([f"w{i}" for i in range(VOCABULARY)], dtype=object)
    block = 10_000_000 - 10_000_000 % SENTENCE
    with open(path, "w", encoding="utf-8") as handle:
        for start in range(0, words, block):
            ids = rng.choice(VOCABULARY, size=min(block, words - start), p=weights / weights.sum())
            lines = names[ids].reshape(-1, SENTENCE) if len(ids) % SENTENCE == 0 else [names[ids]]
            handle.writelines(" ".join(line) + "\n" for line in lines)


MEASURE = """
import json, resource, sys, time
from jaxdl.word2vec.corpus import Word2VecCorpus
def rss_mib():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
before = rss_mib()
started = time.perf_counter()
corpus = Word2VecCorpus.from_files(sys.argv[1])
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"baseline_rss_mib": before, "peak_rss_mib": peak, "after_rss_mib": rss_mib(),
                  "seconds": seconds, "raw_words": corpus.raw_words, "tokens": corpus.num_tokens,
                  "vocab": len(corpus.words),
                  "result_mib": (corpus.ids.nbytes + corpus.sentence_ids.nbytes) / 2**20}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=100_000_000)
    parser.add_argument("--out", default="", help="JSON file for the result")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "corpus.txt")
        started = time.perf_counter()
        write_corpus(path, args.words)
        generated = time.perf_counter() - started
        size = os.path.getsize(path)
        result = json.loads(subprocess.run([sys.executable, "-c", MEASURE, path], check=True,
                                           capture_output=True, text=True).stdout)
    growth = result["peak_rss_mib"] - result["baseline_rss_mib"]
    result.update(words=args.words, file_mib=size / 2**20, generate_seconds=generated, peak_growth_mib=growth,
                  peak_bytes_per_word=growth * 2**20 / args.words, load_average_1min=os.getloadavg()[0])
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
