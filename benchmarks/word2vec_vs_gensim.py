"""word2vec speed and quality: jaxdl's `fit` path against gensim, same file, same settings, same run.

    python -m benchmarks.word2vec_vs_gensim [--quick] [--corpus PATH] [--threads 1,2] [--seeds 0]
        [--sg 1] [--updates sequential,batched] [--chunks 1,2] [--lock-free 2] [--streams 1,16]
        [--batch-centres 4096] --out FILE.json

Every leg (gensim, or jaxdl with one `update`) runs in its own subprocess pinned
to `threads` cores (`sched_setaffinity`, before jax or gensim start their thread
pools; gensim also gets `workers=threads`). gensim gets the token lists of jaxdl's
`read_corpus` (one sentence per non-blank line, lower-cased); jaxdl streams the
same files (`Word2VecCorpus.from_files`, the same tokens, reading and
vocabulary in one pass, timed as vocabulary building). Both train with
dim 100, window 5, negative 5, min_count 5, sample 1e-3, alpha 0.025, 5 epochs
(1 with --quick). Timed per leg: reading, vocabulary building and training;
jaxdl's training runs through `fit_word2vec_model` (the trainer users run) and
its compilation (JAX's backend-compile events) is reported separately. Words/s
is corpus tokens × epochs over training time (for jaxdl, less compilation).
Quality, for every leg through the same `jaxdl.word2vec.evaluation`: Spearman ρ on
WordSim353 and SimLex-999 and 3CosAdd on the Google analogies (gensim's test
data), each with the number of pairs/questions in vocabulary. `--chunks` gives
the sequential update one leg per `config.word2vec.chunks` value (named
"sequential/2" for 2 chunks); `--lock-free` one leg per chunks value with
`lock_free=True` (the runs share the tables in place on the threads, as gensim's
workers do; named "sequential/2 lock-free"). `--streams` repeats every jaxdl leg per
`config.word2vec.streams` value (the corpus in that many spans trained side by side;
named "... streams 16" when above 1); `--batch-centres` sets jaxdl's batch size.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


PAIR_NAMES = ("wordsim353", "simlex999")


def machine() -> dict:
    """`benchmarks.machine.machine()` (CPU, flags, kernel builds, versions) with gensim's version."""
    import gensim

    from benchmarks.machine import machine as described

    info = described()
    info["versions"]["gensim"] = gensim.__version__
    return info


def scores(vectors) -> dict:
    """Spearman / analogy accuracy with in-vocabulary counts, flat."""
    from jaxdl.word2vec.evaluation import benchmark_files, evaluate_word_vectors

    evaluation = evaluate_word_vectors(vectors, benchmark_files())
    flat = {}
    for name in PAIR_NAMES:
        flat.update({name: evaluation[name]["spearman"], f"{name}_pairs": evaluation[name]["pairs"]})
    analogies = evaluation["analogies"]
    flat.update(analogies=analogies["accuracy"], analogies_questions=analogies["questions"] - analogies["oov"])
    return flat


def run_leg(leg: dict) -> dict:
    """One library's read + vocabulary + training on `leg["corpus"]`, in this process."""
    from jaxdl.data.formats.plain_text import read_corpus
    from jaxdl.evaluation.word_vectors import WordVectors
    from jaxdl.word2vec.settings import Word2VecSettings

    settings = Word2VecSettings(**leg["settings"])
    if leg["library"] == "gensim":
        from gensim.models import Word2Vec

        started = time.perf_counter()
        sentences = read_corpus(leg["corpus"], encoding=leg["encoding"])
        read_seconds = time.perf_counter() - started
        tokens = sum(map(len, sentences))

        model = Word2Vec(vector_size=settings.dim, window=settings.window, negative=settings.negative,
                         min_count=settings.min_count, sample=settings.sample, alpha=settings.alpha,
                         min_alpha=settings.min_alpha, sg=int(settings.sg), hs=0, workers=leg["threads"],
                         seed=settings.seed)
        mark = time.perf_counter()
        model.build_vocab(sentences)
        vocab_seconds = time.perf_counter() - mark
        mark = time.perf_counter()
        model.train(sentences, total_examples=model.corpus_count, epochs=settings.epochs)
        train_seconds, compile_seconds = time.perf_counter() - mark, 0.0
        vectors = WordVectors(list(model.wv.index_to_key), model.wv.vectors)
    else:
        import jax

        from jaxdl.word2vec.corpus import Word2VecCorpus
        from jaxdl.word2vec.training import fit_word2vec_model, word2vec_fit_config

        compiled = []
        jax.monitoring.register_event_duration_secs_listener(
            lambda event, seconds, **_: compiled.append(seconds)
            if event == "/jax/core/compile/backend_compile_duration" else None)
        mark = time.perf_counter()  # one streaming pass reads the files and builds the vocabulary
        corpus = Word2VecCorpus.from_files(leg["corpus"], min_count=settings.min_count, encoding=leg["encoding"])
        read_seconds, vocab_seconds, tokens = 0.0, time.perf_counter() - mark, corpus.raw_words
        config = word2vec_fit_config(settings)
        config.train.progress_bar = False
        config.train.log_every = 10**9  # no mid-run host syncs beyond fit's own
        mark = time.perf_counter()
        result, vectors = fit_word2vec_model(corpus, settings, config=config)
        train_seconds, compile_seconds = time.perf_counter() - mark, sum(compiled)
    update = leg.get("update")
    if update == "sequential" and settings.chunks > 1:
        update = f"sequential/{settings.chunks}" + (" lock-free" if settings.lock_free else "")
    if update and settings.streams > 1:
        update += f" streams {settings.streams}"
    return {"library": leg["library"], "update": update, "threads": leg["threads"],
            "seed": settings.seed, "tokens": tokens, "vocab": len(vectors),
            "read_seconds": read_seconds, "vocab_seconds": vocab_seconds, "train_seconds": train_seconds,
            "compile_seconds": compile_seconds,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "whole_run_seconds": read_seconds + vocab_seconds + train_seconds,
            "words_per_second": tokens * settings.epochs / max(train_seconds - compile_seconds, 1e-9),
            **scores(vectors)}


def launch(leg: dict) -> dict:
    """`run_leg(leg)` in a subprocess pinned to the first `leg["threads"]` cores."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        code = ("import json, os, sys; os.sched_setaffinity(0, range(%d)); "
                "from benchmarks.word2vec_vs_gensim import run_leg; "
                "json.dump(run_leg(json.loads(sys.argv[1])), open(sys.argv[2], 'w'))" % leg["threads"])
        subprocess.run([sys.executable, "-c", code, json.dumps(leg), out.name], check=True,
                       env={**os.environ, "JAX_PLATFORMS": "cpu"})
        return json.load(out)


def write_embedded_corpus(directory: str) -> str:
    """The embedded corpus as a text file, one space-joined sentence per line."""
    from jaxdl.data.stdlib_corpus import embedded_corpus

    path = os.path.join(directory, "embedded_corpus.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(" ".join(sentence) + "\n" for sentence in embedded_corpus() if sentence)
    return path


def print_table(report: dict) -> None:
    print(f"word2vec {'skip-gram' if report['settings']['sg'] else 'CBOW'}, {report['tokens']} tokens × "
          f"{report['settings']['epochs']} epochs, corpus {report['corpus']} ({report['machine']['cpu']})\n")
    print("| library | threads | seed | words/s | train s (compile) | whole run s | vocab | WordSim353 ρ (pairs) "
          "| SimLex-999 ρ (pairs) | analogies (questions) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in report["results"]:
        name = r["library"] + (f" {r['update']}" if r["update"] else "")
        print(f"| {name} | {r['threads']} | {r['seed']} | {r['words_per_second']:,.0f} | "
              f"{r['train_seconds']:.1f} ({r['compile_seconds']:.1f}) | {r['whole_run_seconds']:.1f} | {r['vocab']} | "
              f"{r['wordsim353']:.3f} ({r['wordsim353_pairs']}) | {r['simlex999']:.3f} ({r['simlex999_pairs']}) | "
              f"{r['analogies']:.3f} ({r['analogies_questions']}) |")
    print(f"\nload average (1 min): {report['load_average_1min']}")
    for key, ratio in report["words_per_second_ratio_jaxdl_over_gensim"].items():
        print(f"\njaxdl/gensim words/s, {key}: {ratio:.2f}")


def main() -> None:
    from jaxdl.word2vec.settings import Word2VecSettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch instead of 5")
    parser.add_argument("--corpus", default="", help="text file or directory (default: the embedded corpus)")
    parser.add_argument("--encoding", default="utf-8", help="the corpus files' text encoding")
    parser.add_argument("--threads", default="1,2", help="comma-separated core counts")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--sg", type=int, default=1, help="1 skip-gram, 0 CBOW")
    parser.add_argument("--updates", default="sequential,batched", help="jaxdl update modes to time")
    parser.add_argument("--chunks", default="1", help="chunks values for the sequential update")
    parser.add_argument("--lock-free", default="", help="chunks values for lock-free sequential legs")
    parser.add_argument("--streams", default=str(Word2VecSettings.streams),
                        help="streams values for every jaxdl leg (default: the settings' default)")
    parser.add_argument("--batch-centres", type=int, default=Word2VecSettings.batch_centres,
                        help="jaxdl's batch_centres (default: the settings' default)")
    parser.add_argument("--out", required=True, help="JSON file for the results")
    args = parser.parse_args()

    temporary = tempfile.TemporaryDirectory()
    corpus_path = args.corpus or write_embedded_corpus(temporary.name)
    results, load_before = [], os.getloadavg()
    for threads in (int(t) for t in args.threads.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            base = Word2VecSettings(epochs=1 if args.quick else 5, sg=bool(args.sg), seed=seed)
            results.append(launch({"library": "gensim", "threads": threads, "corpus": corpus_path,
                                   "encoding": args.encoding, "settings": dataclasses.asdict(base)}))
            variants = [(update, int(chunks), False) for update in args.updates.split(",")
                        for chunks in (args.chunks.split(",") if update == "sequential" else ["1"])]
            variants += [("sequential", int(chunks), True) for chunks in args.lock_free.split(",") if chunks]
            variants = [(*v, int(streams)) for streams in args.streams.split(",") for v in variants]
            for update, chunks, lock_free, streams in variants:
                settings = dataclasses.asdict(dataclasses.replace(
                    base, update=update, chunks=chunks, lock_free=lock_free, streams=streams,
                    batch_centres=args.batch_centres))
                results.append(launch({"library": "jaxdl", "update": update, "threads": threads,
                                       "corpus": corpus_path, "encoding": args.encoding, "settings": settings}))
    temporary.cleanup()
    ratios = {}
    for r in results:
        if r["library"] == "jaxdl":
            peer = next(g for g in results if g["library"] == "gensim" and g["threads"] == r["threads"]
                        and g["seed"] == r["seed"])
            ratios[f"{r['update']}, {r['threads']} threads, seed {r['seed']}"] = (
                r["words_per_second"] / peer["words_per_second"])
    report = {"benchmark": "word2vec_vs_gensim", "corpus": args.corpus or "embedded (Python documentation)",
              "tokens": results[0]["tokens"], "settings": dataclasses.asdict(base), "results": results,
              "words_per_second_ratio_jaxdl_over_gensim": ratios, "machine": machine(), "quick": args.quick,
              "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]}}
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print_table(report)


if __name__ == "__main__":
    main()
