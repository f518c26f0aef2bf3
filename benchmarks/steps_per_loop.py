"""Scan of k train steps per dispatch against one dispatch per step, tiny MLP.

    python -m benchmarks.steps_per_loop [--quick] --out FILE.json

A tiny MLP (64 → 32 → 10, batch 32) on the ``fit`` path: with one step per
dispatch the host's dispatch cost dominates; ``lax.scan`` over k steps pays it
once per k. Target: speedup (per-step time k=1 / k) ≥ 2.
"""

from __future__ import annotations

import numpy as np
from flax import nnx

from benchmarks.machine import markdown_table, parse_args, report
from benchmarks.workloads import FitPath, Workload, interleaved_ms
from jaxdl.models.mlp import MLP
from jaxdl.train import task as task_lib

TARGET = 2.0
KS = (1, 8, 32, 128)


def tiny_mlp() -> Workload:
    rng = np.random.default_rng(0)
    arrays = {"x": rng.normal(size=(4096, 64)).astype(np.float32),
              "y": rng.integers(0, 10, 4096).astype(np.int32)}
    return Workload("tiny_mlp", lambda: MLP(64, (32,), 10, rngs=nnx.Rngs(0)),
                    task_lib.classification(), arrays, 32, "adam", 1e-3, None)


def main() -> None:
    args = parse_args(__doc__)
    steps, repeats = (256, 3) if args.quick else (1024, 7)
    workload = tiny_mlp()
    runners = {k: FitPath(workload, steps_per_loop=k, log_every=max(k, 128)).run for k in KS}
    timed = interleaved_ms(runners, steps, repeats)
    base = timed[1]["median_ms"]
    per_k = {str(k): {"ms_per_step": t["median_ms"], "min_ms_per_step": t["min_ms"],
                      "speedup": base / t["median_ms"]} for k, t in timed.items()}
    best = max(KS[1:], key=lambda k: per_k[str(k)]["speedup"])
    results = {"tiny_mlp": {"per_step_dispatch_ms": base,
                            "scan_ms": per_k[str(best)]["ms_per_step"], "k": best,
                            "speedup": per_k[str(best)]["speedup"], "target": TARGET,
                            "met": per_k[str(best)]["speedup"] >= TARGET, "by_k": per_k}}
    rows = [[k, per_k[str(k)]["ms_per_step"], per_k[str(k)]["speedup"]] for k in KS]
    table = markdown_table(["steps_per_loop k", "ms/step (median)", "speedup vs k=1"], rows)
    report("steps_per_loop", results, table, args.out)


if __name__ == "__main__":
    main()
