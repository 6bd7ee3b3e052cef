"""Carry a webgan MNIST run on under a variant of its training step, to test what might lift the
share of generated digits the classifier reads with confidence (the experiments behind the MNIST
model card's table of legs, www/weights/README.md). Not the product's training: that is
`webgan-cli train` (and python/train_ddp.py), whose step this one is with the options at their
defaults, but for the learning rate and for how the data is drawn.

    target/torch-venv/bin/python python/finetune_variants.py \\
        --checkpoint runs/mnist-h200/checkpoint-25666.safetensors --out runs/ft/ttur \\
        --steps 28000 --lr-g 5e-5 --lr-d 2e-4
    webgan-cli score --checkpoint runs/ft/ttur/ck-28000.safetensors --data train-images-idx3-ubyte.gz \\
        --count 2000 --classifier www/weights/mnist-classifier.safetensors

The variants: learning rates per network (two time-scale updates), one-sided label smoothing
(`--real-target 0.9`), top-k updates of G (`--top-k 32`: G learns only from the fakes D rates
most real, Sinha et al. 2020), and a fresh, wider D against the trained G (`--ndf 64`, with
`--d-warmup` D-only steps first). Writes a webgan checkpoint every `--save-every` steps; one CPU
thread, data drawn with replacement from the seed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webgan_torch as wt  # noqa: E402
from train_ddp import read_idx  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a webgan MNIST checkpoint to start from")
    p.add_argument("--data", default="www/data/mnist/train-images-idx3-ubyte.gz")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, required=True, help="train until this step")
    p.add_argument("--lr-g", type=float, default=1e-4)
    p.add_argument("--lr-d", type=float, default=1e-4)
    p.add_argument("--real-target", type=float, default=1.0, help="D's target for real images")
    p.add_argument("--top-k", type=int, default=0, help="G's loss over only the k fakes D rates highest")
    p.add_argument("--ndf", type=int, default=0, help="replace D by a fresh one this wide")
    p.add_argument("--d-warmup", type=int, default=0, help="D-only steps before G trains again")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(1)

    cfg = replace(wt.read_config(a.checkpoint), ema=a.ema)
    gan, _ = wt.load_checkpoint(a.checkpoint, cfg)
    if a.ndf:
        wide = wt.GAN(replace(cfg, ndf=a.ndf))
        wide.G, wide.opt_g, wide.g_ema, wide.step_count = gan.G, gan.opt_g, gan.g_ema, gan.step_count
        gan, cfg = wide, wide.cfg
    for group in gan.opt_g.param_groups:
        group["lr"] = a.lr_g
    for group in gan.opt_d.param_groups:
        group["lr"] = a.lr_d
    images = read_idx(a.data, cfg.image_size)
    rng = torch.Generator().manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    bce = F.binary_cross_entropy_with_logits
    started, first, warmup = time.time(), gan.step_count, a.d_warmup

    while gan.step_count < a.steps:
        gan.G.train()
        gan.D.train()
        x = images[torch.randint(0, len(images), (cfg.batch,), generator=rng)].float() / 127.5 - 1.0
        z = torch.randn(cfg.batch, cfg.z_dim, generator=rng)
        gan.opt_d.zero_grad()
        real_logits = gan.D(x)
        d_real = bce(real_logits, torch.full_like(real_logits, a.real_target))
        d_real.backward()
        fake = gan.G(z).reshape(x.shape)
        fake_logits = gan.D(fake.detach())
        d_fake = bce(fake_logits, torch.zeros_like(fake_logits))
        d_fake.backward()
        gan.opt_d.step()
        if warmup > 0:
            warmup -= 1
            continue

        gan.opt_g.zero_grad()
        logits = gan.D(fake).reshape(-1)
        if a.top_k:
            logits = torch.topk(logits, a.top_k).values
        g_loss = bce(logits, torch.ones_like(logits))
        g_loss.backward()
        gan.opt_g.step()
        gan.step_count += 1
        with torch.no_grad():
            for e, q in zip(gan.g_ema, gan.G.parameters()):
                e.mul_(cfg.ema).add_(q, alpha=1 - cfg.ema)
        if gan.step_count % 100 == 0:
            ms = 1e3 * (time.time() - started) / (gan.step_count - first)
            print(f"step {gan.step_count} D {d_real.item() + d_fake.item():.3f} G {g_loss.item():.3f} {ms:.0f} ms/step",
                  flush=True)
        if gan.step_count % a.save_every == 0:
            wt.save_checkpoint(gan, os.path.join(a.out, f"ck-{gan.step_count}.safetensors"))


if __name__ == "__main__":
    main()
