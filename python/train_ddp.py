"""Carry a webgan run on in PyTorch, on as many processes as torchrun starts, and bring it back.

    torchrun --nproc_per_node 2 python/train_ddp.py --checkpoint runs/mnist/checkpoint.safetensors \\
        --data ../shared/data/mnist/train-images-idx3-ubyte.gz --steps 20000 --out runs/mnist-torch

It resumes from a webgan checkpoint (the page's "Save checkpoint" or `webgan-cli train`), trains
webgan's step (python/webgan_torch) under DistributedDataParallel, and writes webgan checkpoints
(`OUT/checkpoint.safetensors`, which `webgan-cli train --resume` and the page load) and, with
`--export`, the page's F16 generator file. Backends: nccl with one GPU per process, gloo on CPUs.

One model, whatever the process count: the checkpoint's batch is the global batch, split evenly
over the processes; each global batch is the same set of images as a single process would take
(DistributedSampler hands rank r every R-th index of one shuffled order); batchnorm takes its
statistics over the global batch (SyncBatchNorm on GPUs; on CPUs, where SyncBatchNorm refuses to
run, `GlobalBatchNorm2d` below all-reduces the sums); every rank draws the same global z and
takes its share. So a two-process run computes the one-process run's steps, to rounding.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
import warnings
from dataclasses import replace

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webgan_torch as wt  # noqa: E402

# Both still the documented way for what they do here: buffers that must not be synced (each
# rank's batchnorm statistics are already global), and an all-reduce that autograd goes through.
warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
warnings.filterwarnings("ignore", message=".*nn.functional.all_reduce is deprecated.*", category=FutureWarning)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d with training statistics over every process's part of the batch (gloo/CPU).
    Two autograd-aware all-reduces (sums for the mean, then squared deviations for the variance),
    so the backward pass also sums over processes, as SyncBatchNorm does on GPUs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        dims = (0, 2, 3)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype)
        total = dist_fn.all_reduce(torch.cat([x.sum(dims), count]))
        n = total[-1]
        mean = total[:-1] / n
        centred = x - mean[None, :, None, None]
        var = dist_fn.all_reduce(centred.pow(2).sum(dims)) / n
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * n / max(n - 1, 1), alpha=m)
        y = centred / torch.sqrt(var + self.eps)[None, :, None, None]
        return y * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def global_batchnorm(net: nn.Module) -> None:
    """Swap every BatchNorm2d of `net` (a webgan Net) for GlobalBatchNorm2d, keeping its state."""
    for name, m in list(net.named_children()):
        if type(m) is nn.BatchNorm2d:
            g = GlobalBatchNorm2d(m.num_features, eps=m.eps, momentum=m.momentum)
            g.load_state_dict(m.state_dict())
            net.add_module(name, g)


def read_idx(path: str, size: int) -> torch.Tensor:
    """MNIST's IDX images as uint8 [N, 1, size, size], zero-padded as webgan pads them."""
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[:4] != b"\x00\x00\x08\x03":
        raise SystemExit(f"{path}: not an IDX image file (magic {raw[:4].hex()})")
    n, rows, cols = (int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(3))
    images = torch.frombuffer(bytearray(raw[16:16 + n * rows * cols]), dtype=torch.uint8).reshape(n, 1, rows, cols)
    top, left = (size - rows) // 2, (size - cols) // 2
    out = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    out[:, :, top:top + rows, left:left + cols] = images
    return out


def read_folder(path: str, size: int, channels: int, crop: tuple[int, int, int, int] | None) -> torch.Tensor:
    """A folder of images (searched recursively) as uint8 [N, C, size, size]: the box `crop` cut
    first, then a centre square crop and a resize, as webgan's loader does (Pillow's box filter
    here, an area average like webgan's; the pixels may differ by rounding). Files that are not
    images are skipped and counted."""
    from PIL import Image

    images, skipped = [], 0
    for root, _, files in sorted(os.walk(path)):
        for name in sorted(files):
            try:
                im = Image.open(os.path.join(root, name))
                im = im.convert("L" if channels == 1 else "RGB")
            except Exception:
                skipped += 1
                continue
            if crop:
                x, y, w, h = crop
                im = im.crop((x, y, x + w, y + h))
            side = min(im.size)
            left, top = (im.width - side) // 2, (im.height - side) // 2
            im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BOX)
            t = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).reshape(size, size, channels)
            images.append(t.permute(2, 0, 1))
    if not images:
        raise SystemExit(f"{path}: no images ({skipped} files skipped)")
    if skipped:
        print(f"{path}: {skipped} files skipped (not images)", flush=True)
    return torch.stack(images)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a webgan checkpoint to start from")
    p.add_argument("--data", required=True, help="an MNIST IDX file (.gz or raw) or a folder of images")
    p.add_argument("--crop", help="x,y,w,h: a box cut from every image of a folder first (as webgan's --crop)")
    p.add_argument("--steps", type=int, required=True, help="train until this step (counted as webgan counts)")
    p.add_argument("--out", required=True, help="where checkpoint.safetensors goes")
    p.add_argument("--export", help="also write the page's F16 generator file here")
    p.add_argument("--lr", type=float, help="change the learning rate (both networks)")
    p.add_argument("--seed", type=int, default=0, help="data order and z for this leg of the run")
    p.add_argument("--log-every", type=int, default=100)
    args = p.parse_args()

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)

    cfg = wt.read_config(args.checkpoint)
    if args.lr is not None:
        cfg = replace(cfg, lr=args.lr)
    if cfg.batch % world:
        raise SystemExit(f"the global batch {cfg.batch} does not split over {world} processes")
    gan, _ = wt.load_checkpoint(args.checkpoint, cfg)
    for net in (gan.G, gan.D):
        if cuda:
            nn.SyncBatchNorm.convert_sync_batchnorm(net)
        elif world > 1:
            global_batchnorm(net)
    gan.to(device)
    gan.g_ema = [e.to(device) for e in gan.g_ema]
    # Optimisers over the (moved, converted) parameters, their state carried over.
    gan.opt_g, gan.opt_d = _moved_optimiser(gan.opt_g, gan, gan.G), _moved_optimiser(gan.opt_d, gan, gan.D)
    # DDP averages gradients over processes; batchnorm already agrees, so buffers stay as they are.
    ddp_g = DDP(gan.G, broadcast_buffers=False)
    ddp_d = DDP(gan.D, broadcast_buffers=False)
    gan.G, gan.D = ddp_g, ddp_d  # GAN.step calls them; their state_dict names stay the modules'

    crop = tuple(int(v) for v in args.crop.split(",")) if args.crop else None
    images = (read_folder(args.data, cfg.image_size, cfg.channels, crop) if os.path.isdir(args.data)
              else read_idx(args.data, cfg.image_size))
    local = cfg.batch // world
    sampler = DistributedSampler(TensorDataset(images), num_replicas=world, rank=rank, shuffle=True,
                                 seed=args.seed, drop_last=True)
    loader = DataLoader(TensorDataset(images), batch_size=local, sampler=sampler, drop_last=True)
    noise = torch.Generator().manual_seed(args.seed ^ 0x5EED)
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
        print(f"{len(images)} images; {world} process(es) on {device.type}, {local} of the global batch "
              f"{cfg.batch} each; from step {gan.step_count} to {args.steps}", flush=True)

    started, first, epoch = time.time(), gan.step_count, 0
    while gan.step_count < args.steps:
        sampler.set_epoch(epoch)
        for (real,) in loader:
            if gan.step_count >= args.steps:
                break
            z = torch.randn(cfg.batch, cfg.z_dim, generator=noise)[rank::world]
            metrics = torch.tensor(gan.step(real.to(device), z.to(device)))
            if gan.step_count % args.log_every == 0 or gan.step_count == args.steps:
                dist.all_reduce(metrics)
                metrics /= world
                if rank == 0:
                    ms = 1e3 * (time.time() - started) / (gan.step_count - first)
                    print(f"step {gan.step_count} D {metrics[0] + metrics[2]:.3f} G {metrics[4]:.3f} "
                          f"D(x) {metrics[1]:.2f} D(G(z)) {metrics[3]:.2f} {ms:.0f} ms/step", flush=True)
        epoch += 1

    if rank == 0:
        gan.G, gan.D = ddp_g.module, ddp_d.module
        gan.to("cpu")
        gan.g_ema = [e.cpu() for e in gan.g_ema]
        path = os.path.join(args.out, "checkpoint.safetensors")
        wt.save_checkpoint(gan, path)
        print(f"wrote {path} at step {gan.step_count} ({(time.time() - started) / max(gan.step_count - first, 1) * 1e3:.0f} ms/step)")
        if args.export:
            wt.save_generator(gan, args.export, {"trained": f"resumed in PyTorch {torch.__version__} on {world} process(es)"})
            print(f"wrote {args.export}")
    dist.barrier()
    dist.destroy_process_group()


def _moved_optimiser(old: torch.optim.Adam, gan: wt.GAN, net: nn.Module) -> torch.optim.Adam:
    """A fresh Adam over `net`'s parameters as they are now, with `old`'s state (by position)."""
    new = gan._adam(net)
    for p_old, p_new in zip(old.param_groups[0]["params"], new.param_groups[0]["params"]):
        if p_old in old.state:
            new.state[p_new] = {k: v.to(p_new.device) for k, v in old.state[p_old].items()}
    return new


if __name__ == "__main__":
    main()
