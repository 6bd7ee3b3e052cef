"""One training step of the same model in PyTorch and in webgan's native backends, on this machine,
printed side by side with the ratios (PyTorch is what a user would pick instead of webgan).

    target/torch-venv/bin/python python/bench_step.py [--models mnist32,page32] [--steps 20]
        [--backends cpu,gpu] [--cli target/release/webgan-cli]

webgan's figures come from `webgan-cli train` itself (the --backend cpu fast path, and the WGSL
kernels on wgpu's default adapter, lavapipe on a machine without a GPU): a 3-step leg to warm up
and write a checkpoint, then a --resume leg of --steps steps whose ms/step it prints. PyTorch runs
python/webgan_torch's step, the same model and step, on all cores, after 3 warm-up steps. Both
read batch 64 from MNIST's test images. Run `./build.sh` (or cargo build --release) first.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webgan_torch as wt  # noqa: E402
from train_ddp import read_idx  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "www/data/mnist/t10k-images-idx3-ubyte.gz")
# name: (webgan-cli train flags, the same model for PyTorch)
MODELS = {
    "mnist32": (["--kernel", "k4s2p1"], wt.Config(kernel="k4s2p1")),
    "page32": ([], wt.Config(kernel="seed5x5")),
}


def torch_ms(cfg: wt.Config, steps: int) -> float:
    torch.manual_seed(1)
    gan = wt.GAN(cfg)
    images = read_idx(DATA, cfg.image_size)
    batch = lambda i: images[(i * cfg.batch) % (len(images) - cfg.batch):][: cfg.batch]  # noqa: E731
    for i in range(3):
        gan.step(batch(i), torch.randn(cfg.batch, cfg.z_dim))
    started = time.perf_counter()
    for i in range(steps):
        gan.step(batch(3 + i), torch.randn(cfg.batch, cfg.z_dim))
    return 1e3 * (time.perf_counter() - started) / steps


def webgan_ms(cli: str, backend: str, flags: list[str], steps: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        base = [cli, "train", "--data", DATA, "--out", out, "--sample-every", "100000", *flags]
        if backend == "cpu":
            base += ["--backend", "cpu"]
        subprocess.run(base + ["--steps", "3"], check=True, capture_output=True)
        leg = subprocess.run(base + ["--steps", str(3 + steps), "--resume", os.path.join(out, "checkpoint.safetensors")],
                             check=True, capture_output=True, text=True)
    m = re.search(r"steps in [0-9.]+ s, ([0-9.]+) ms/step", leg.stdout)
    if not m:
        raise SystemExit(f"webgan-cli printed no ms/step:\n{leg.stdout}\n{leg.stderr}")
    return float(m.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mnist32,page32")
    p.add_argument("--backends", default="cpu,gpu", help="webgan's: cpu (the fast path), gpu (wgpu's adapter)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cli", default=os.path.join(ROOT, "target/release/webgan-cli"))
    args = p.parse_args()
    print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, PyTorch {torch.__version__} "
          f"({torch.get_num_threads()} threads), batch 64, {args.steps} timed steps", flush=True)
    for name in args.models.split(","):
        flags, cfg = MODELS[name]
        t = torch_ms(cfg, args.steps)
        line = f"{name:8} PyTorch {t:8.1f} ms/step"
        for backend in args.backends.split(","):
            w = webgan_ms(args.cli, backend, flags, args.steps)
            label = "webgan --backend cpu" if backend == "cpu" else "webgan WGSL (wgpu)"
            line += f" | {label} {w:8.1f} ms/step, PyTorch / webgan {t / w:5.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
