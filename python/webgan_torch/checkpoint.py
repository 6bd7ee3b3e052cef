"""webgan's files from PyTorch: training checkpoints (format webgan-checkpoint-1, F32, with Adam
moments, running statistics, step and G's moving average) and the page's generator files
(webgan-generator-1, F16, G only). See src/model/checkpoint.rs and src/model/weights.rs.

Names map one to one: a Linear or conv layer i of G is "G.{i}.weight" and "G.{i}.bias" in both;
a batchnorm layer i keeps webgan's "G.{i}.affine" [2, C] = stack(weight, bias) and its k-th
batchnorm's "G.running.{k}" [2, C] = stack(running_mean, running_var). Adam's moments are
"<name>.adam_m" and "<name>.adam_v", G's moving average "<name>.ema".

Loading checks everything before it changes anything, and refuses what webgan refuses: another
format, another architecture (each differing field named), a missing or misshapen tensor, a
non-finite value. Saving writes a temporary file and renames it, so an interrupted save never
leaves a truncated file.
"""

from __future__ import annotations

import os
from dataclasses import replace

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save
from torch import nn

from .model import ARCHITECTURE, GAN, Config, Net, generator

CHECKPOINT = "webgan-checkpoint-1"
GENERATOR = "webgan-generator-1"


class CheckpointError(ValueError):
    """A file webgan would refuse; nothing was changed."""


def _params(net: Net) -> list[tuple[str, list[nn.Parameter]]]:
    """webgan's parameter tensors of `net` in storage order: (name, the torch parameters that
    make it up: one, or a batchnorm's weight and bias stacked)."""
    out = []
    for i, m in enumerate(net):
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            out.append((f"{net.name}.{i}.affine", [m.weight, m.bias]))
        elif isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            out += [(f"{net.name}.{i}.weight", [m.weight]), (f"{net.name}.{i}.bias", [m.bias])]
    return out


def _running(net: Net) -> list[tuple[str, list[torch.Tensor]]]:
    return [(f"{net.name}.running.{k}", [m.running_mean, m.running_var]) for k, m in enumerate(net.batchnorms())]


def _stack(ts: list[torch.Tensor]) -> torch.Tensor:
    return ts[0].detach().clone() if len(ts) == 1 else torch.stack([t.detach() for t in ts])


def _assign(dst: list[torch.Tensor], value: torch.Tensor) -> None:
    with torch.no_grad():
        if len(dst) == 1:
            dst[0].copy_(value)
        else:
            for d, v in zip(dst, value):
                d.copy_(v)


def _shape(ts: list[torch.Tensor]) -> list[int]:
    return list(ts[0].shape) if len(ts) == 1 else [len(ts), *ts[0].shape]


def _moments(opt: torch.optim.Optimizer, params: list[nn.Parameter]) -> tuple[list, list]:
    state = [opt.state.get(p, {}) for p in params]
    m = [s["exp_avg"] if "exp_avg" in s else torch.zeros_like(p) for s, p in zip(state, params)]
    v = [s["exp_avg_sq"] if "exp_avg_sq" in s else torch.zeros_like(p) for s, p in zip(state, params)]
    return m, v


def checkpoint_tensors(gan: GAN) -> dict[str, torch.Tensor]:
    """Every tensor of a webgan checkpoint of `gan`, under webgan's names, F32."""
    out: dict[str, torch.Tensor] = {}
    for net, opt in ((gan.G, gan.opt_g), (gan.D, gan.opt_d)):
        for name, ps in _params(net):
            m, v = _moments(opt, ps)
            out[name], out[name + ".adam_m"], out[name + ".adam_v"] = _stack(ps), _stack(m), _stack(v)
        for name, ts in _running(net):
            out[name] = _stack(ts)
    if gan.g_ema:
        ema = iter(gan.g_ema)
        for name, ps in _params(gan.G):
            out[name + ".ema"] = _stack([next(ema) for _ in ps])
    return {k: v.float().contiguous() for k, v in out.items()}


def _write(path: str, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    data = st_save(tensors, metadata=meta)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def save_checkpoint(gan: GAN, path: str, run: dict[str, str] | None = None) -> None:
    """A webgan checkpoint of `gan`: `webgan-cli train --resume` and the page load it. Without
    `run` (webgan's data order and noise stream) a webgan resume starts a fresh data order."""
    meta = {**gan.cfg.metadata(), "format": CHECKPOINT, "step": str(gan.step_count)}
    meta.update({f"run.{k}": v for k, v in (run or {}).items()})
    _write(path, checkpoint_tensors(gan), meta)


def _open(path: str, formats: tuple[str, ...]):
    try:
        f = safe_open(path, framework="pt")
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: not a safetensors file ({e})") from None
    meta = f.metadata() or {}
    if meta.get("format") not in formats:
        raise CheckpointError(f"{path}: format {meta.get('format')!r}, not {' or '.join(formats)}")
    return f, meta


def _read(f, path: str, name: str, shape: list[int]) -> torch.Tensor:
    if name not in f.keys():
        raise CheckpointError(f"{path}: tensor {name} is missing")
    t = f.get_tensor(name)
    if list(t.shape) != shape:
        raise CheckpointError(f"{path}: tensor {name} has shape {list(t.shape)}, this model needs {shape}")
    if t.dtype not in (torch.float32, torch.float16):
        raise CheckpointError(f"{path}: tensor {name} is {t.dtype}, expected F32 or F16")
    t = t.float()
    if not torch.isfinite(t).all():
        i = int((~torch.isfinite(t)).flatten().nonzero()[0])
        raise CheckpointError(f"{path}: tensor {name} holds {t.flatten()[i].item()} at index {i}")
    return t


def _config(path: str, meta: dict[str, str]) -> Config:
    try:
        return Config.from_metadata(meta)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None


def read_config(path: str) -> Config:
    """The configuration a checkpoint or generator file was written with."""
    return _config(path, _open(path, (CHECKPOINT, GENERATOR))[1])


def load_checkpoint(path: str, cfg: Config | None = None) -> tuple[GAN, dict[str, str]]:
    """A GAN with a webgan checkpoint's whole state, and its run pairs ("sampler", "rng"...).
    `cfg` (default: the file's own) may change hyperparameters; an architecture that differs
    from the file's is refused with the differing fields named."""
    f, meta = _open(path, (CHECKPOINT,))
    saved = _config(path, meta)
    cfg = cfg or saved
    differ = [f"checkpoint has {k}={getattr(saved, k)}, this model {k}={getattr(cfg, k)}"
              for k in ARCHITECTURE if getattr(saved, k) != getattr(cfg, k)]
    if differ:
        raise CheckpointError(f"{path}: another architecture: " + "; ".join(differ))
    gan = GAN(cfg)
    step = int(meta.get("step", "0"))
    # Read and check every tensor before assigning any.
    values, moments = [], []
    for net, opt in ((gan.G, gan.opt_g), (gan.D, gan.opt_d)):
        for name, ps in _params(net):
            shape = _shape(ps)
            values.append((ps, _read(f, path, name, shape)))
            moments.append((opt, ps, _read(f, path, name + ".adam_m", shape), _read(f, path, name + ".adam_v", shape)))
        for name, ts in _running(net):
            values.append((ts, _read(f, path, name, _shape(ts))))
    ema = None
    if cfg.ema > 0 and all(name + ".ema" in f.keys() for name, _ in _params(gan.G)):
        ema = [(ps, _read(f, path, name + ".ema", _shape(ps))) for name, ps in _params(gan.G)]
    for dst, v in values:
        _assign(dst, v)
    gan.step_count = step
    if step > 0:
        for opt, ps, m, v in moments:
            ms = [m] if len(ps) == 1 else list(m)
            vs = [v] if len(ps) == 1 else list(v)
            for p, pm, pv in zip(ps, ms, vs):
                opt.state[p] = {"step": torch.tensor(float(step)), "exp_avg": pm.clone(), "exp_avg_sq": pv.clone()}
    if ema is not None:
        gan.g_ema = [t.clone() for ps, e in ema for t in ([e] if len(ps) == 1 else list(e))]
    elif cfg.ema > 0:
        # A checkpoint without an average starts it at G's parameters, as webgan does.
        gan.g_ema = [p.detach().clone() for p in gan.G.parameters()]
    run = {k[4:]: v for k, v in meta.items() if k.startswith("run.")}
    return gan, run


def load_generator(path: str) -> tuple[Net, Config, dict[str, str]]:
    """G in eval mode from the page's F16 generator file or from a checkpoint (its trained G,
    not the moving average: `webgan-cli export` writes the average with its own statistics),
    with the configuration and the file's metadata."""
    f, meta = _open(path, (CHECKPOINT, GENERATOR))
    cfg = _config(path, meta)
    gan = GAN(replace(cfg, ema=0.0))
    loaded = []
    for name, ps in _params(gan.G) + _running(gan.G):
        loaded.append((ps, _read(f, path, name, _shape(ps))))
    for dst, v in loaded:
        _assign(dst, v)
    gan.G.eval()
    return gan.G, cfg, meta


def save_generator(gan: GAN, path: str, info: dict[str, str] | None = None, calibrate_batches: int = 16) -> None:
    """The page's F16 generator file. With a moving average of G, the file holds the average,
    with batchnorm statistics measured for it over `calibrate_batches` batches of random z (the
    training G's statistics belong to its own weights), as `webgan-cli export` does."""
    g = gan.G
    if gan.g_ema:
        g = generator(gan.cfg)
        with torch.no_grad():
            for p, e in zip(g.parameters(), gan.g_ema):
                p.copy_(e)
            for bn in g.batchnorms():
                bn.reset_running_stats()
                bn.momentum = None  # a plain average over the calibration batches
            gen = torch.Generator().manual_seed(gan.cfg.seed ^ 0xCA1B)
            g.train()
            for _ in range(calibrate_batches):
                g(torch.randn(gan.cfg.batch, gan.cfg.z_dim, generator=gen))
        info = {"weights": f"moving average of G's parameters (decay {gan.cfg.ema}); batchnorm statistics "
                f"of {calibrate_batches} generated batches of {gan.cfg.batch}", **(info or {})}
    tensors = {name: _stack(ps).half().contiguous() for name, ps in _params(g) + _running(g)}
    meta = {**gan.cfg.metadata(), "format": GENERATOR, "step": str(gan.step_count)}
    meta.update({f"info.{k}": v for k, v in (info or {}).items()})
    _write(path, tensors, meta)

