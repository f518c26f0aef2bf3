"""Peak memory of a streamed run against dataset size: it must stay flat.

    python -m benchmarks.stream_memory [--quick] [--out FILE.json]

Writes two image folders of 32x32 RGB PNGs (10 classes), ``N`` and ``10 N``
training images (``N`` = 600; ``--quick``: 300), each with the same small
``test/`` split, then runs the same streamed training on each in its own
subprocess — ``python -m jaxdl.run --config=experiments/imagefolder_cnn.py``
(tutorial CNN, ``data.source=stream``, 2 worker threads, batch 32, 40 steps,
the test split streamed by ``fit`` at the end) — and reads that subprocess's
peak resident set size from ``os.wait4`` (``ru_maxrss``). The streamed source
holds only the file list, so the two peaks should differ by far less than the
goal of 100 MB. The runs alternate (small, large, small, large, ...) so drift
of a shared machine hits both alike; the median of each is reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

from benchmarks.input_pipeline import STREAM_CLASSES, write_png_folder
from benchmarks.machine import markdown_table, parse_args, report

GOAL_MB = 100.0
STEPS, WORKERS = 40, 2


def peak_rss_mb(root: str, workdir: str, worker_mode: str = "threads") -> float:
    """Peak RSS in MB (10^6 bytes) of one streamed ``imagefolder_cnn`` run over ``root``."""
    command = [sys.executable, "-m", "jaxdl.run", "--config=experiments/imagefolder_cnn.py",
               f"--workdir={workdir}", f"--config.data.dir={root}",
               f"--config.train.num_steps={STEPS}", f"--config.data.workers={WORKERS}",
               f"--config.data.worker_mode={worker_mode}", "--config.train.progress_bar=False",
               "--config.checkpoint.every_steps=0"]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(workdir + ".log"), "w") as log:
        child = subprocess.Popen(command, cwd=repo, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {child.returncode}; see {workdir}.log")
    return usage.ru_maxrss * 1024 / 1e6  # Linux reports kilobytes


def main() -> None:
    args = parse_args(__doc__)
    small = 300 if args.quick else 600
    reps = 1 if args.quick else 2
    sizes = {"N": small, "10N": 10 * small}
    load_before = os.getloadavg()
    peaks: dict[str, list[float]] = {name: [] for name in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        roots = {}
        for name, images in sizes.items():
            root = os.path.join(tmp, name)
            write_png_folder(os.path.join(root, "train"), images // len(STREAM_CLASSES))
            write_png_folder(os.path.join(root, "test"), 5, seed=1)
            roots[name] = root
        for rep in range(reps):
            for name, root in roots.items():
                peaks[name].append(peak_rss_mb(root, os.path.join(tmp, f"run-{name}-{rep}")))
                print(f"{name} ({sizes[name]} images): peak RSS {peaks[name][-1]:.1f} MB",
                      flush=True)
    median = {name: float(np.median(v)) for name, v in peaks.items()}
    difference = median["10N"] - median["N"]
    results = {name: {"train_images": sizes[name], "peak_rss_mb": median[name],
                      "all_peak_rss_mb": peaks[name]} for name in sizes}
    results.update(difference_mb=difference, goal_mb=GOAL_MB, met=abs(difference) < GOAL_MB,
                   settings=dict(model="tutorial_cnn", image_size=32, batch_size=32,
                                 steps=STEPS, workers=WORKERS, worker_mode="threads",
                                 repetitions=reps, rss="os.wait4 ru_maxrss of the run"))
    table = markdown_table(
        ["train images (32x32 PNG)", "peak RSS MB (median)", "all runs"],
        [[sizes[name], f"{median[name]:.1f}", ", ".join(f"{v:.1f}" for v in peaks[name])]
         for name in sizes])
    table += (f"\n\ndifference 10N - N: {difference:+.1f} MB "
              f"(goal |difference| < {GOAL_MB:.0f} MB: {'met' if results['met'] else 'not met'})")
    report("stream_memory", results, table, args.out,
           load_average_1_5_15={"before": load_before, "after": os.getloadavg()})


if __name__ == "__main__":
    main()
