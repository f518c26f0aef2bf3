"""jaxdl's ``fit`` step against a hand-written ``jax.jit`` step, same model and data.

    python -m benchmarks.overhead [--quick] --out FILE.json

Both dispatch one step at a time (``steps_per_loop=1``); repetitions alternate
between the two and the ratio uses medians (minimums are recorded too). Target:
jaxdl / hand-written ≤ 1.03 for every model.
"""

from __future__ import annotations

from benchmarks.machine import markdown_table, parse_args, report, selected
from benchmarks.workloads import WORKLOADS, FitPath, HandWritten, interleaved_ms

TARGET = 1.03


def main() -> None:
    args = parse_args(__doc__)
    steps, repeats = (20, 5) if args.quick else (50, 15)
    results, rows = {}, []
    for name, make in selected(WORKLOADS, args.models).items():
        workload = make()
        timed = interleaved_ms({"jaxdl": FitPath(workload).run,
                                "hand": HandWritten(workload).run}, steps, repeats)
        ratio = timed["jaxdl"]["median_ms"] / timed["hand"]["median_ms"]
        results[name] = {"jaxdl_ms": timed["jaxdl"]["median_ms"],
                         "peer_ms": timed["hand"]["median_ms"],
                         "jaxdl_min_ms": timed["jaxdl"]["min_ms"],
                         "peer_min_ms": timed["hand"]["min_ms"], "ratio": ratio,
                         "min_ratio": timed["jaxdl"]["min_ms"] / timed["hand"]["min_ms"],
                         "target": TARGET, "met": ratio <= TARGET,
                         "batch_size": workload.batch_size, "steps": steps, "repeats": repeats}
        rows.append([name, workload.batch_size, results[name]["jaxdl_ms"],
                     results[name]["peer_ms"], ratio, results[name]["min_ratio"],
                     "yes" if ratio <= TARGET else "no"])
    table = markdown_table(["model", "batch", "jaxdl fit ms/step", "hand jax.jit ms/step",
                            "ratio (median)", "ratio (min)", f"≤ {TARGET}"], rows)
    report("overhead", results, table, args.out, peer="hand-written jax.jit step")


if __name__ == "__main__":
    main()
