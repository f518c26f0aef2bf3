"""Data-parallel throughput over N devices, FLOP/s and (on a GPU) model FLOPs utilisation.

    python -m benchmarks.scaling [--quick] --out FILE.json

Each device count runs in its own subprocess (on a CPU, N forced host devices via
``XLA_FLAGS=--xla_force_host_platform_device_count=N``, which all share the same
cores, so no speed-up is expected there: it measures the cost of the sharded
program; on a GPU host, the first N real devices). Weak scaling: the global batch
is ``per-device batch × N`` on the ``fit`` path with ``config.mesh.data=N``.
FLOPs per step are the model's matmul FLOPs, ``6 × batch × Σ d_in·d_out`` (forward
and backward); XLA's own count, ``jax.jit(...).lower(...).compile().cost_analysis()``,
is recorded beside it but not used, because on GPU it leaves out the cuBLAS
custom calls that do almost all the work (it reported 0.6 GFLOP for a 123 GFLOP
step on an H200). MFU divides the
achieved FLOP/s by the device's dense TF32 peak (float32 matmuls run in TF32 on
NVIDIA GPUs by default) times N.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from benchmarks.machine import markdown_table, parse_args, report

# Dense TF32 tensor-core peak FLOP/s by device-kind substring (NVIDIA datasheets).
PEAK_TF32 = {"H200": 494.7e12, "H100": 494.7e12, "A100": 156e12, "L4": 60e12,
             "A10": 62.5e12, "V100": 15.7e12, "T4": 8.1e12}


def _peak(kind: str) -> float | None:
    return next((v for k, v in PEAK_TF32.items() if k.lower() in kind.lower()), None)


def mlp_matmul_flops(sizes: tuple[int, ...], batch: int) -> float:
    """Training FLOPs of an MLP's matmuls: 2 (multiply-add) × 3 (fwd + 2 bwd) per weight."""
    return 6.0 * batch * sum(a * b for a, b in zip(sizes, sizes[1:]))


def worker(num_devices: int, quick: bool) -> dict:
    """Runs in the subprocess: throughput of the fit path on ``num_devices``."""
    import jax
    from flax import nnx

    from benchmarks.workloads import FitPath, Workload
    from jaxdl import distributed
    from jaxdl.models.mlp import MLP
    from jaxdl.train import task as task_lib

    gpu = jax.default_backend() == "gpu"
    hidden, per_device = ((4096, 4096), 1024) if gpu else ((512, 512), 64)
    batch = per_device * num_devices
    rng = np.random.default_rng(0)
    n = batch * 8
    arrays = {"x": rng.normal(size=(n, 784)).astype(np.float32),
              "y": rng.integers(0, 10, n).astype(np.int32)}
    workload = Workload("mlp", lambda: MLP(784, hidden, 10, rngs=nnx.Rngs(0)),
                        task_lib.classification(), arrays, batch, "adam", 1e-3, None)
    k = 10
    path = FitPath(workload, steps_per_loop=k, mesh=distributed.make_mesh(num_devices, 1),
                   log_every=10 * k)
    # One step (k=1 lowers without a loop: XLA counts a while body only once),
    # and XLA counts the partitioned per-device program, hence × N.
    one_step = path.source.step_inputs(0, 1)
    cost = path.loop.lower(path.state, path.zeros(), path.arrays,
                           one_step).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    xla_flops_per_step = float(cost.get("flops", float("nan"))) * num_devices
    flops_per_step = mlp_matmul_flops((784, *hidden, 10), batch)
    steps = 50 if quick else 200
    times = [path.run(steps) / steps for _ in range(3 if quick else 5)]
    step_s = float(np.median(times))
    kind = jax.devices()[0].device_kind
    peak = _peak(kind) if gpu else None
    return {"devices": num_devices, "device_kind": kind, "global_batch": batch,
            "hidden": list(hidden), "step_ms": step_s * 1e3,
            "examples_per_s": batch / step_s, "flops_per_step": flops_per_step,
            "xla_flops_per_step": xla_flops_per_step,
            "flops_per_s": flops_per_step / step_s,
            "mfu": (flops_per_step / step_s) / (peak * num_devices) if peak else None}


def _device_counts() -> list[int]:
    import jax
    if jax.default_backend() == "cpu":
        return [1, 2, 4, 8]
    return [n for n in (1, 2, 4, 8, 16) if n <= jax.device_count()]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(int(sys.argv[2]), sys.argv[3] == "quick")))
        return
    args = parse_args(__doc__)
    results, rows = {}, []
    for n in _device_counts():
        env = dict(os.environ)
        import jax
        if jax.default_backend() == "cpu":
            env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n}"
        out = subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--worker", str(n),
                              "quick" if args.quick else "full"], env=env, capture_output=True,
                             text=True, check=True)
        entry = json.loads(out.stdout.strip().splitlines()[-1])
        results[str(n)] = entry
    base = results["1"]["examples_per_s"]
    for n, entry in results.items():
        entry["throughput_vs_1"] = entry["examples_per_s"] / base
        entry["scaling_efficiency"] = entry["throughput_vs_1"] / int(n)
        rows.append([n, entry["global_batch"], entry["step_ms"], entry["examples_per_s"],
                     entry["throughput_vs_1"], entry["flops_per_s"] / 1e9,
                     "n/a" if entry["mfu"] is None else f"{100 * entry['mfu']:.1f}%"])
    table = markdown_table(["devices", "global batch", "ms/step", "examples/s",
                            "throughput vs 1", "GFLOP/s", "MFU"], rows)
    report("scaling", {"mlp": results}, table, args.out)


if __name__ == "__main__":
    main()
