"""jaxdl ``fit`` steps against PyTorch eager for the same models, batches and optimizers.

    python -m benchmarks.vs_pytorch [--quick] --out FILE.json

Models and data are those of ``benchmarks.workloads`` (MLP, tutorial CNN, LSTM
tagger); PyTorch runs on the CPU with ``torch.set_num_threads(cores)`` and, when
CUDA is present, also on the GPU (synchronised after each timed block). Time per
step, medians of alternating repetitions. CPU targets (jaxdl / torch, issue 30,
on AVX-512 and on AVX2 CPUs alike): MLP ≤ 0.6, CNN ≤ 0.8, LSTM ≤ 0.9. The JSON's
``machine`` names the CPU, its flags and the native kernel build that ran
(``JAXDL_NATIVE_ISA=avx2`` forces the AVX2 build on an AVX-512 CPU).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from torch import nn

from benchmarks.machine import markdown_table, parse_args, report, selected
from benchmarks.workloads import LSTM_SHAPE, WORKLOADS, FitPath, Workload, interleaved_ms

TARGETS = {"mlp": 0.6, "lstm": 0.9, "cnn": 0.8}


class TorchMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                 nn.Linear(256, 10))

    def forward(self, batch):
        return self.net(batch["x"])


class TorchTutorialCNN(nn.Module):
    """PyTorch's CIFAR-10 tutorial network (NCHW)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 6, 5), nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, batch):
        x = self.pool(torch.relu(self.conv1(batch["x"])))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class TorchLSTMTagger(nn.Module):
    def __init__(self):
        super().__init__()
        s = LSTM_SHAPE
        self.embed = nn.Embedding(s["vocab"], s["embed"])
        self.lstm = nn.LSTM(s["embed"], s["hidden"], batch_first=True)
        self.head = nn.Linear(s["hidden"], s["tags"])

    def forward(self, batch):
        return self.head(self.lstm(self.embed(batch["tokens"]))[0])


TORCH_MODELS = {"mlp": TorchMLP, "cnn": TorchTutorialCNN, "lstm": TorchLSTMTagger}


class TorchEager:
    """A PyTorch eager training loop over the workload's arrays on ``device``."""

    def __init__(self, workload: Workload, device: str):
        self.device = device
        arrays = dict(workload.arrays)
        if workload.name == "cnn":
            arrays["x"] = np.ascontiguousarray(arrays["x"].transpose(0, 3, 1, 2))  # NCHW
        self.arrays = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
        for key in ("tokens", "y"):
            if key in self.arrays:
                self.arrays[key] = self.arrays[key].long()
        self.model = TORCH_MODELS[workload.name]().to(device)
        params = self.model.parameters()
        self.opt = (torch.optim.Adam(params, lr=workload.lr) if workload.optimizer == "adam"
                    else torch.optim.SGD(params, lr=workload.lr, momentum=0.9))
        self.sequence = workload.name == "lstm"
        self.batch_size = workload.batch_size
        self.num_examples = len(next(iter(workload.arrays.values())))
        self.perm = torch.from_numpy(
            np.random.default_rng(0).permutation(self.num_examples)).to(device)
        self.step = 0
        self.run(3)  # warm up allocators and kernels

    def _loss(self, batch):
        logits = self.model(batch)
        if not self.sequence:
            return nn.functional.cross_entropy(logits, batch["y"])
        per_token = nn.functional.cross_entropy(logits.flatten(0, 1), batch["y"].flatten(),
                                                reduction="none")
        mask = batch["target_mask"].flatten()
        return (per_token * mask).sum() / mask.sum()

    def run(self, num_steps: int) -> float:
        start = time.perf_counter()
        per_epoch = self.num_examples // self.batch_size
        for _ in range(num_steps):
            at = (self.step % per_epoch) * self.batch_size
            idx = self.perm[at:at + self.batch_size]
            batch = {k: v[idx] for k, v in self.arrays.items()}
            self.opt.zero_grad(set_to_none=True)
            self._loss(batch).backward()
            self.opt.step()
            self.step += 1
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def main() -> None:
    args = parse_args(__doc__)
    torch.set_num_threads(os.cpu_count())
    steps, repeats = (20, 5) if args.quick else (50, 15)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results, rows = {}, []
    for name, make in selected(WORKLOADS, args.models).items():
        workload = make()
        runners = {"jaxdl": FitPath(workload).run}
        runners.update({f"torch_{d}": TorchEager(workload, d).run for d in devices})
        timed = interleaved_ms(runners, steps, repeats)
        jaxdl_ms = timed["jaxdl"]["median_ms"]
        entry = {"jaxdl_ms": jaxdl_ms, "peer_ms": timed["torch_cpu"]["median_ms"],
                 "jaxdl_min_ms": timed["jaxdl"]["min_ms"],
                 "peer_min_ms": timed["torch_cpu"]["min_ms"],
                 "ratio": jaxdl_ms / timed["torch_cpu"]["median_ms"],
                 "min_ratio": timed["jaxdl"]["min_ms"] / timed["torch_cpu"]["min_ms"],
                 "target_cpu": TARGETS[name], "batch_size": workload.batch_size,
                 "optimizer": workload.optimizer, "lr": workload.lr}
        if "torch_cuda" in timed:
            entry["peer_cuda_ms"] = timed["torch_cuda"]["median_ms"]
            entry["ratio_cuda"] = jaxdl_ms / timed["torch_cuda"]["median_ms"]
        entry["met"] = entry["ratio"] <= TARGETS[name]
        results[name] = entry
        rows.append([name, workload.batch_size, jaxdl_ms, entry["peer_ms"], entry["ratio"],
                     entry["min_ratio"], TARGETS[name], "yes" if entry["met"] else "no"]
                    + ([entry["peer_cuda_ms"], entry["ratio_cuda"]] if "torch_cuda" in timed
                       else []))
    header = ["model", "batch", "jaxdl ms/step", "torch eager ms/step", "ratio (median)",
              "ratio (min)", "target ≤", "met"]
    if "cuda" in devices:
        header += ["torch cuda ms/step", "ratio vs cuda"]
    import jax
    report("vs_pytorch", results, markdown_table(header, rows), args.out,
           peer=f"PyTorch {torch.__version__} eager", jax_backend=jax.default_backend(),
           torch_threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
