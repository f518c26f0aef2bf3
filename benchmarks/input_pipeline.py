"""The share of step time spent waiting for data on the ``fit`` path.

    python -m benchmarks.input_pipeline [--quick] --out FILE.json

``fit`` keeps the dataset on the device and ships only int32 batch indices: per
dispatch the host computes them (a slice of the epoch's permutation) and places
them. This measures that host time (index computation + transfer call) against
the total time per step, for the digits MLP (the ``mlp_digits`` experiment's
model and batch) and MNIST-shaped data (60000 × 28 × 28, an MLP and LeNet-5).
The host work is counted whole even though dispatch is asynchronous (it mostly
overlaps the previous step). The index transfer itself happens inside the jitted
loop's dispatch (numpy in, placed by ``in_shardings``, ~15 µs measured against
~150 µs for a separate ``jax.device_put``) and is counted in the step time, not
in the wait. Target: < 5%.

The ``streaming`` rows (part of the default run; ``--models streaming`` runs
only them) generate an image folder of 32×32 RGB PNGs in a temp dir and measure
(1) images/s of jaxdl's ``StreamingSource`` over ``ImageFolder`` (2 worker
threads, and 2 worker processes) against ``torch.utils.data.DataLoader`` over
``torchvision.datasets.ImageFolder`` (2 workers) with the same per-image work —
decode the PNG, resize to 32×32 (bilinear), to float, normalise — batch 32,
a fixed number of batches after a warm-up, alternating, in one process; goal
ratio ≥ 1.0; and (2) the share of step time a ``fit`` of the tutorial CNN
(``experiments/imagefolder_cnn``) with ``data.source=stream`` waits inside
``source.step_inputs``, and its ms/step against the same run with
``data.source=arrays``; goal < 5% — with worker threads, worker processes, and
threads with decoded examples cached (``data.cache_mb``; that row's share is
also given from the second epoch on, when every example comes from the cache).
Without torch the torch rows are skipped.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
from flax import nnx

from benchmarks.machine import markdown_table, parse_args, report, selected
from benchmarks.workloads import FitPath, Workload
from jaxdl.train import task as task_lib

TARGET = 0.05


def _classification(name, make_model, x, y, batch_size) -> Workload:
    return Workload(name, make_model, task_lib.classification(), {"x": x, "y": y}, batch_size,
                    "adam", 1e-3, None)


def workloads() -> list[Workload]:
    from sklearn.datasets import load_digits
    from jaxdl.models.cnn import LeNet5
    from jaxdl.models.mlp import MLP
    digits = load_digits()
    x_digits = (digits.data / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    mnist_x = rng.random((60000, 28, 28, 1), dtype=np.float32)
    mnist_y = rng.integers(0, 10, 60000).astype(np.int32)
    return [
        _classification("digits_mlp", lambda: MLP(64, (256, 256), 10, dropout=0.2,
                                                  rngs=nnx.Rngs(0)),
                        x_digits, digits.target.astype(np.int32), 64),
        _classification("mnist_mlp", lambda: MLP(784, (256, 256), 10, rngs=nnx.Rngs(0)),
                        mnist_x.reshape(60000, 784), mnist_y, 128),
        _classification("mnist_lenet5", lambda: LeNet5(10, 1, rngs=nnx.Rngs(0)),
                        mnist_x, mnist_y, 128),
    ]


# --- Streaming rows: an image folder of 32x32 PNGs, jaxdl against torchvision ---

IMAGE_SIZE, CHANNELS, WORKERS, BATCH = 32, 3, 2, 32
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
STREAM_CLASSES = tuple(f"c{i}" for i in range(10))


def write_png_folder(root: str, per_class: int, seed: int = 0) -> str:
    """``root/<class>/<i>.png``: 32x32 RGB noise PNGs, ``per_class`` per class."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for label, name in enumerate(STREAM_CLASSES):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, CHANNELS), dtype=np.uint8)
            pixels[label:label + 3] = 255
            Image.fromarray(pixels, "RGB").save(os.path.join(root, name, f"{i:04d}.png"))
    return root


class Normalised:
    """An ``ImageFolder`` whose examples are normalised on the host, as torchvision's
    ``Normalize`` does, so both pipelines run the same transforms per image."""

    def __init__(self, folder):
        self.folder = folder
        self.mean = np.asarray(MEAN, np.float32)
        self.std = np.asarray(STD, np.float32)

    def __len__(self):
        return len(self.folder)

    def __getitem__(self, index):
        example = self.folder[index]
        return {"x": (example["x"] - self.mean) / self.std, "y": example["y"]}


def _images_per_second(batches, warmup: int, measured: int) -> float:
    iterator = iter(batches)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(measured):
        next(iterator)
    return measured * BATCH / (time.perf_counter() - start)


def jaxdl_images_per_second(root: str, mode: str, warmup: int, measured: int) -> float:
    """Host batches ``[B, 32, 32, 3]`` of ``StreamingSource`` over ``ImageFolder``."""
    from jaxdl.data.formats.image_folder import ImageFolder
    from jaxdl.data.streaming import StreamingSource
    folder = ImageFolder(root, image_size=IMAGE_SIZE, channels=CHANNELS, resize="stretch")
    source = StreamingSource(Normalised(folder), BATCH, seed=0, workers=WORKERS,
                             worker_mode=mode, prefetch=2)
    try:
        return _images_per_second((source.step_inputs(s, 1) for s in range(10 ** 9)),
                                  warmup, measured)
    finally:
        source.close()


def torch_images_per_second(root: str, warmup: int, measured: int) -> float:
    """``DataLoader(torchvision.datasets.ImageFolder)``: Resize, ToTensor, Normalize."""
    import torch
    from torchvision import datasets, transforms
    transform = transforms.Compose([transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)),
                                    transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    loader = torch.utils.data.DataLoader(
        datasets.ImageFolder(root, transform=transform), batch_size=BATCH, shuffle=True,
        drop_last=True, num_workers=WORKERS, prefetch_factor=2,
        generator=torch.Generator().manual_seed(0))
    return _images_per_second(loader, warmup, measured)


def throughput_rows(root: str, quick: bool) -> dict:
    """images/s of jaxdl (threads, processes) and torch, side by side, alternating."""
    warmup, measured, reps = (5, 20, 1) if quick else (10, 60, 3)
    try:
        import torchvision  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        print("torch/torchvision not importable: skipping the torch DataLoader rows "
              "(run with /work/torchvenv or the bench extra)")
    runs = {"jaxdl_threads": [], "jaxdl_processes": [], "torch": []}
    for _ in range(reps):
        runs["jaxdl_threads"].append(jaxdl_images_per_second(root, "threads", warmup, measured))
        runs["jaxdl_processes"].append(jaxdl_images_per_second(root, "processes", warmup,
                                                               measured))
        if have_torch:
            runs["torch"].append(torch_images_per_second(root, warmup, measured))
    out = {name: {"images_per_s": float(np.median(v)), "all": v} for name, v in runs.items() if v}
    for name in ("jaxdl_threads", "jaxdl_processes"):
        if have_torch:
            ratio = out[name]["images_per_s"] / out["torch"]["images_per_s"]
            per_rep = [a / t for a, t in zip(runs[name], runs["torch"])]
            out[name].update(ratio_vs_torch=ratio, ratio_per_repetition=per_rep, target=1.0,
                             met=ratio >= 1.0)
    out["settings"] = dict(batch_size=BATCH, workers=WORKERS, image_size=IMAGE_SIZE,
                           warmup_batches=warmup, measured_batches=measured, repetitions=reps,
                           torch_skipped=not have_torch)
    return out


def _timed_calls(cls, calls: list):
    """Wrap ``cls.step_inputs`` to record (entry time, seconds inside) per call."""
    original = cls.step_inputs

    def step_inputs(self, step, num_steps):
        start = time.perf_counter()
        result = original(self, step, num_steps)
        calls.append((start, time.perf_counter() - start))
        return result

    cls.step_inputs = step_inputs
    return lambda: setattr(cls, "step_inputs", original)


def cnn_fit(root: str, source: str, mode: str, steps: int, warmup: int,
            cache_mb: float = 0, epoch_steps: int | None = None) -> dict:
    """A ``fit`` of the tutorial CNN (``imagefolder_cnn``) with ``data.source``; the
    steady-state ms/step and the host time spent inside ``source.step_inputs`` (which
    overlaps the previous step's compute: dispatch is asynchronous). With
    ``epoch_steps``, also the ms/step from the second epoch on (where a
    ``data.cache_mb`` cache serves every example)."""
    from experiments import imagefolder_cnn
    from jaxdl.data.sources import ArrayTrainSource
    from jaxdl.data.streaming import StreamingSource
    config = imagefolder_cnn.get_config()
    config.data.dir, config.data.source, config.data.workers = root, source, WORKERS
    config.data.worker_mode, config.data.cache_mb = mode, cache_mb
    config.data.normalize_mean, config.data.normalize_std = MEAN, STD
    config.train.num_steps, config.train.log_every = steps, 50
    config.train.progress_bar = False
    config.checkpoint.every_steps = 0
    calls: list = []
    restore = _timed_calls(StreamingSource if source == "stream" else ArrayTrainSource, calls)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            imagefolder_cnn.run(config, workdir)
    finally:
        restore()
    # calls[0] is fit's probe of step 0, then one call per step (steps_per_loop=1).
    out = _call_rates(calls[warmup:])
    if epoch_steps and epoch_steps + 1 < len(calls) - 1:
        later = _call_rates(calls[epoch_steps + 1:])
        out.update({f"{k}_after_first_epoch": v for k, v in later.items()})
    return out


def _call_rates(calls: list) -> dict:
    total = calls[-1][0] - calls[0][0]
    inside = sum(seconds for _, seconds in calls[:-1])
    return {"ms_per_step": total / (len(calls) - 1) * 1e3,
            "in_step_inputs_ms_per_step": inside / (len(calls) - 1) * 1e3,
            "measured_steps": len(calls) - 1}


CACHE_MB = 64  # the cached row's data.cache_mb: the whole 3,000-image folder (35 MB) fits


def wait_rows(root: str, quick: bool, num_images: int) -> dict:
    """The streamed CNN's wait share: (stream - arrays) / stream ms/step, per worker mode,
    and with decoded examples cached (``data.cache_mb``; share also from the second epoch)."""
    steps, warmup, reps = (60, 10, 1) if quick else (300, 20, 2)
    runs = {"stream_threads": ("stream", "threads", 0),
            "stream_processes": ("stream", "processes", 0),
            "stream_threads_cache": ("stream", "threads", CACHE_MB),
            "arrays": ("arrays", "threads", 0)}
    measured = {name: [] for name in runs}
    for _ in range(reps):  # alternating, so drift of the shared machine hits all alike
        for name, (source, mode, cache_mb) in runs.items():
            measured[name].append(cnn_fit(root, source, mode, steps, warmup, cache_mb,
                                          epoch_steps=num_images // BATCH))
    out = {}
    for name, values in measured.items():
        out[name] = {key: float(np.median([v[key] for v in values])) for key in values[0]}
        out[name]["all_ms_per_step"] = [v["ms_per_step"] for v in values]
    for name in ("stream_threads", "stream_processes", "stream_threads_cache"):
        for suffix in ("", "_after_first_epoch"):
            key = "ms_per_step" + suffix
            if key not in out[name]:
                continue
            share = (out[name][key] - out["arrays"][key]) / out[name][key]
            out[name]["wait_share" + suffix] = share
        share = out[name]["wait_share"]
        out[name].update(target=TARGET, met=share < TARGET)
    out["settings"] = dict(model="tutorial_cnn", batch_size=BATCH, workers=WORKERS,
                           steps=steps, warmup_steps=warmup, repetitions=reps)
    return out


def streaming(quick: bool) -> tuple[dict, str]:
    """Both streaming row groups over a generated folder; (results, markdown table)."""
    per_class = 100 if quick else 300
    with tempfile.TemporaryDirectory() as root:
        write_png_folder(os.path.join(root, "train"), per_class)
        write_png_folder(os.path.join(root, "test"), 5, seed=1)
        speed = throughput_rows(os.path.join(root, "train"), quick)
        wait = wait_rows(root, quick, per_class * len(STREAM_CLASSES))
    speed["settings"]["num_images"] = per_class * len(STREAM_CLASSES)
    rows = [[name, f"{v['images_per_s']:.0f}",
             f"{v['ratio_vs_torch']:.3g}" if "ratio_vs_torch" in v else "-",
             ("yes" if v["met"] else "no") if "met" in v else "-"]
            for name, v in speed.items() if name != "settings"]
    table = markdown_table(["pipeline (2 workers, batch 32, 32x32 PNG)", "images/s",
                            "ratio vs torch", ">= 1.0"], rows)
    table += "\n\n" + markdown_table(
        ["tutorial CNN fit (2 workers)", "ms/step", "host ms/step inside step_inputs",
         "wait share (stream - arrays) / stream", "< 5%", "ms/step from epoch 2",
         "wait share from epoch 2"],
        [[f"data.source={name.replace('_', ', ')}", v["ms_per_step"],
          v["in_step_inputs_ms_per_step"],
          f"{100 * v['wait_share']:.2f}%" if "wait_share" in v else "-",
          ("yes" if v["met"] else "no") if "met" in v else "-",
          v.get("ms_per_step_after_first_epoch", "-"),
          f"{100 * v['wait_share_after_first_epoch']:.2f}%"
          if "wait_share_after_first_epoch" in v else "-"]
         for name, v in wait.items() if name != "settings"])
    return {"throughput": speed, "cnn_wait": wait}, table


def main() -> None:
    args = parse_args(__doc__)
    steps = 100 if args.quick else 600
    names = {w.name: w for w in workloads()}
    names["streaming"] = None
    chosen = selected(names, args.models)
    load_before = os.getloadavg()
    results, rows = {}, []
    for name, workload in chosen.items():
        if workload is None:
            continue
        path = FitPath(workload)
        path.host_seconds = 0.0
        total = path.run(steps)
        share = path.host_seconds / total
        results[workload.name] = {"step_ms": total / steps * 1e3,
                                  "data_wait_ms": path.host_seconds / steps * 1e3,
                                  "share": share, "target": TARGET, "met": share < TARGET,
                                  "batch_size": workload.batch_size, "steps": steps,
                                  "num_examples": len(workload.arrays["y"])}
        rows.append([workload.name, workload.batch_size, total / steps * 1e3,
                     path.host_seconds / steps * 1e3, f"{100 * share:.2f}%",
                     "yes" if share < TARGET else "no"])
    table = markdown_table(["experiment", "batch", "ms/step", "host data ms/step", "share",
                            "< 5%"], rows) if rows else ""
    if "streaming" in chosen:
        results["streaming"], streaming_table = streaming(args.quick)
        table = (table + "\n\n" if table else "") + streaming_table
    report("input_pipeline", results, table, args.out,
           load_average_1_5_15={"before": load_before, "after": os.getloadavg()})


if __name__ == "__main__":
    main()
