"""word2vec throughput and quality: jaxdl against gensim on the same corpus and settings.

    python -m benchmarks.word2vec_vs_gensim [--quick] [--corpus PATH] --out FILE.json

Both train skip-gram (dim 100, window 5, negative 5, min_count 5, sample 1e-3,
5 epochs; gensim with one worker per core) on the same token lists (jaxdl's
`read_corpus`: one sentence per non-blank line, lower-cased). Words/s counts the
corpus tokens times epochs over the wall time of vocabulary building plus
training; jaxdl runs twice, with and without compilation (the ratio uses the second). Quality: Spearman on WordSim353 and
SimLex-999 from gensim's test data, with the pairs scored and out of vocabulary.
The default corpus is jaxdl's embedded English text (the Python documentation,
≈227k tokens, ships with Python), written one sentence per line to a temporary
file that both libraries read; `--corpus` takes any file or directory (e.g.
gensim's `lee_background.cor`). The Python documentation shares few words with
WordSim353 (most pairs are out of vocabulary), so its similarity scores rest on
few pairs: the table says how many.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time

import gensim
import jax
import numpy as np
from gensim.models import Word2Vec
from gensim.test.utils import datapath

from jaxdl.data.embedded_text import embedded_corpus
from jaxdl.data.text_readers import read_corpus
from jaxdl.evaluation.word_similarity import evaluate_word_pairs
from jaxdl.evaluation.word_vectors import WordVectors
from jaxdl.word2vec.corpus import Word2VecCorpus
from jaxdl.word2vec.host_loop import Word2VecSettings, fit_word2vec

PAIR_FILES = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}


def machine() -> dict:
    """CPU model, core count, accelerator and library versions."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    gpus = [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    return {
        "cpu": cpu, "cores": os.cpu_count(), "gpu": gpus[0] if gpus else None,
        "versions": {"jax": jax.__version__, "gensim": gensim.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }


def similarity_scores(wv: WordVectors) -> dict:
    """Spearman per pair file, with `<name>_pairs` scored and `<name>_oov` skipped."""
    scores = {}
    for name, file in PAIR_FILES.items():
        result = evaluate_word_pairs(wv, datapath(file))
        scores.update({name: result["spearman"], f"{name}_pairs": result["pairs"], f"{name}_oov": result["oov"]})
    return scores


def write_embedded_corpus(directory: str) -> str:
    """The embedded corpus as a text file, one space-joined sentence per line."""
    path = os.path.join(directory, "embedded_corpus.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(" ".join(sentence) + "\n" for sentence in embedded_corpus() if sentence)
    return path


def run_gensim(sentences, settings: Word2VecSettings, workers: int) -> dict:
    started = time.perf_counter()
    model = Word2Vec(sentences, vector_size=settings.dim, window=settings.window, negative=settings.negative,
                     min_count=settings.min_count, sample=settings.sample, alpha=settings.alpha,
                     min_alpha=settings.min_alpha, epochs=settings.epochs, sg=1, hs=0, workers=workers,
                     seed=settings.seed)
    seconds = time.perf_counter() - started
    wv = WordVectors(list(model.wv.index_to_key), model.wv.vectors)
    return {"seconds": seconds, "vocab": len(wv), **similarity_scores(wv)}


def run_jaxdl(sentences, settings: Word2VecSettings) -> dict:
    started = time.perf_counter()
    corpus = Word2VecCorpus.from_sentences(sentences, min_count=settings.min_count)
    params, info = fit_word2vec(corpus, settings, progress=False)
    seconds = time.perf_counter() - started
    wv = WordVectors(corpus.words, np.asarray(params["input"]))
    return {"seconds": seconds, "train_seconds": info["seconds"], "vocab": len(wv), **similarity_scores(wv)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch instead of 5 (under a minute)")
    parser.add_argument("--corpus", default="",
                        help="text file or directory, one sentence per line (default: the embedded corpus)")
    parser.add_argument("--out", required=True, help="JSON file for the results")
    args = parser.parse_args()

    temporary = tempfile.TemporaryDirectory()
    corpus_path = args.corpus or write_embedded_corpus(temporary.name)
    sentences = read_corpus(corpus_path)
    temporary.cleanup()
    tokens = sum(len(s) for s in sentences)
    settings = Word2VecSettings(dim=100, window=5, negative=5, min_count=5, sample=1e-3,
                                epochs=1 if args.quick else 5, sg=True)
    workers = os.cpu_count() or 1
    results = {
        "gensim": run_gensim(sentences, settings, workers),
        # First run compiles; the second reuses the compiled program (steady state).
        "jaxdl (with compile)": run_jaxdl(sentences, settings),
        "jaxdl": run_jaxdl(sentences, settings),
    }
    for result in results.values():
        result["words_per_second"] = tokens * settings.epochs / result["seconds"]
    ratio = results["jaxdl"]["words_per_second"] / results["gensim"]["words_per_second"]
    report = {
        "benchmark": "word2vec_vs_gensim", "corpus": str(args.corpus or "embedded (Python documentation)"), "tokens": tokens,
        "sentences": len(sentences), "settings": dataclasses.asdict(settings),
        "gensim_workers": workers, "results": results, "words_per_second_ratio_jaxdl_over_gensim": ratio,
        "machine": machine(), "quick": args.quick,
    }
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=2)

    print(f"word2vec skip-gram, {tokens} tokens × {settings.epochs} epochs, corpus {report['corpus']}\n")
    print("| library | words/s | seconds | vocab | WordSim353 ρ (pairs) | SimLex-999 ρ (pairs) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(f"| {name} | {r['words_per_second']:,.0f} | {r['seconds']:.2f} | {r['vocab']} | "
              f"{r['wordsim353']:.3f} ({r['wordsim353_pairs']}) | {r['simlex999']:.3f} ({r['simlex999_pairs']}) |")
    print(f"\njaxdl/gensim words/s ratio: {ratio:.2f} ({report['machine']['cpu']}, {workers} cores)")


if __name__ == "__main__":
    main()
