"""The sequential word2vec kernel per call: chunks, threads and lock-free runs against one run, same batches.

    python -m benchmarks.word2vec_kernel [--quick] [--corpus PATH --encoding latin-1]
        [--configs 1:1:0,1:2:0,2:1:0,2:2:0,2:2:1] --out FILE.json

Times `kernels.sgns_update.sgns_sequential` alone (no batch assembly, no `fit`)
on 8 real batches of the corpus (default: the embedded one) with the default
settings (skip-gram, dim 100, window 5, negative 5, batch 4,096 centres, streams
16), tables from `init_params`. A config `chunks:workers:lock_free` is one leg;
legs alternate over rounds and each reports its best round's ms per call and
its ratio to the first leg's. What it separates: one run with a second thread
drawing its noise words ahead (`1:2:0` against `1:1:0`), the deterministic
chunks' private copies and merge (`2:1:0`), their scaling over threads (`2:2:0`)
and the lock-free runs' (`2:2:1`).
"""

from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 10 calls instead of 5 of 40")
    parser.add_argument("--corpus", default="", help="text file or directory (default: the embedded corpus)")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--configs", default="1:1:0,1:2:0,2:1:0,2:2:0,2:2:1", help="chunks:workers:lock_free,…")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp

    from benchmarks.machine import markdown_table, report
    from benchmarks.word2vec_vs_gensim import write_embedded_corpus
    from jaxdl.kernels.sgns_update import sgns_sequential
    from jaxdl.word2vec.corpus import Word2VecCorpus
    from jaxdl.word2vec.settings import Word2VecSettings
    from jaxdl.word2vec.sgns import init_params
    from jaxdl.word2vec.training import Word2VecSource

    path = args.corpus or write_embedded_corpus(tempfile.mkdtemp())
    settings = Word2VecSettings()
    corpus = Word2VecCorpus.from_files(path, min_count=settings.min_count, encoding=args.encoding)
    source = Word2VecSource(corpus, settings)
    arrays = source.device_arrays()
    make = jax.jit(lambda step: source.make_batch(arrays, step))
    batches = [make(jnp.array([7 * i], jnp.int32)) for i in range(8)]
    configs = [tuple(int(v) for v in c.split(":")) for c in args.configs.split(",")]
    rounds, calls = (2, 10) if args.quick else (5, 40)

    def leg(chunks, workers, lock_free):
        return jax.jit(lambda p, b: sgns_sequential(p, b, jnp.float32(0.02), sg=True, chunks=chunks,
                                                    workers=workers, lock_free=bool(lock_free))[0],
                       donate_argnums=0)

    runs = {c: leg(*c) for c in configs}
    best = {c: float("inf") for c in configs}
    for _ in range(rounds):
        for config, run in runs.items():
            params = run(init_params(jax.random.key(0), len(corpus.words), settings.dim), batches[0])
            jax.block_until_ready(params)
            started = time.perf_counter()
            for i in range(calls):
                params = run(params, batches[i % len(batches)])
            jax.block_until_ready(params)
            best[config] = min(best[config], (time.perf_counter() - started) / calls * 1e3)
    first = best[configs[0]]
    results = [{"chunks": c[0], "workers": c[1], "lock_free": bool(c[2]), "ms_per_call": best[c],
                "ratio_to_first": best[c] / first} for c in configs]
    table = markdown_table(["chunks", "workers", "lock_free", "ms / call", f"÷ {configs[0]}"],
                           [[r["chunks"], r["workers"], r["lock_free"], r["ms_per_call"], r["ratio_to_first"]]
                            for r in results])
    report("word2vec_kernel", results, table, args.out, corpus=args.corpus or "embedded",
           vocab=len(corpus.words), quick=args.quick)


if __name__ == "__main__":
    main()
