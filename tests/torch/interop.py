"""PyTorch's side of tests/torch.rs: webgan's Rust test writes inputs, this runs them through the
PyTorch module (python/webgan_torch) and writes webgan files back for Rust to compare.

    interop.py steps DIR      DIR/start.safetensors (a webgan checkpoint) and DIR/inputs.safetensors
                              (real: uint8 [steps, N, C, H, W], z: f32 [steps, N, z_dim]) ->
                              DIR/torch-1.safetensors ... (a webgan checkpoint after each step)
                              and DIR/torch-metrics.safetensors (f32 [steps, 6])
    interop.py generate WEIGHTS Z OUT
                              G(z) in eval mode from a generator file or checkpoint; Z and OUT
                              are safetensors files holding "z" [N, z_dim] and "images" [N, C, H, W]
    interop.py train-one IN OUT
                              one PyTorch step from checkpoint IN (a seeded random batch and z),
                              saved to OUT: the page test's round trip
    interop.py step-of CHECKPOINT
                              prints the step a checkpoint holds, after loading it whole
    interop.py refuse GOOD BAD...
                              every BAD file is refused by load_checkpoint(BAD, GOOD's config),
                              each with its message printed; the process fails if one loads
"""

import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import webgan_torch as wt  # noqa: E402

torch.use_deterministic_algorithms(True)


def steps(folder: str) -> None:
    gan, _ = wt.load_checkpoint(os.path.join(folder, "start.safetensors"))
    inputs = load_file(os.path.join(folder, "inputs.safetensors"))
    metrics = []
    for k, (real, z) in enumerate(zip(inputs["real"], inputs["z"]), start=1):
        metrics.append(gan.step(real, z))
        wt.save_checkpoint(gan, os.path.join(folder, f"torch-{k}.safetensors"))
    save_file({"metrics": torch.tensor(metrics, dtype=torch.float32)}, os.path.join(folder, "torch-metrics.safetensors"))
    print(f"{len(metrics)} PyTorch steps of {gan.cfg.kind} {gan.cfg.kernel}: metrics {metrics[-1]}")


def generate(weights: str, z_file: str, out: str) -> None:
    g, cfg, _ = wt.load_generator(weights)
    z = load_file(z_file)["z"]
    with torch.no_grad():
        images = g(z).reshape(z.shape[0], cfg.channels, cfg.image_size, cfg.image_size)
    save_file({"images": images.contiguous()}, out)
    print(f"{weights}: G(z) for {z.shape[0]} z in PyTorch {torch.__version__}")


def train_one(src: str, out: str) -> None:
    gan, _ = wt.load_checkpoint(src)
    cfg = gan.cfg
    rng = torch.Generator().manual_seed(5)
    real = torch.randint(0, 256, (cfg.batch, cfg.channels, cfg.image_size, cfg.image_size), dtype=torch.uint8, generator=rng)
    metrics = gan.step(real, torch.randn(cfg.batch, cfg.z_dim, generator=rng))
    wt.save_checkpoint(gan, out)
    print(f"PyTorch: {src} at step {gan.step_count - 1}, one step (D loss {metrics[0] + metrics[2]:.4f}), saved {out}")


def step_of(path: str) -> None:
    gan, run = wt.load_checkpoint(path)
    print(f"step {gan.step_count}; run state: {', '.join(sorted(run)) or 'none'}")


def refuse(good: str, *bad: str) -> None:
    cfg = wt.read_config(good)
    for path in bad:
        try:
            wt.load_checkpoint(path, cfg)
        except wt.CheckpointError as e:
            print(f"refused: {e}")
            continue
        raise SystemExit(f"{path}: loaded, but webgan refuses it")


if __name__ == "__main__":
    {"steps": steps, "generate": generate, "train-one": train_one, "step-of": step_of, "refuse": refuse}[sys.argv[1]](*sys.argv[2:])
