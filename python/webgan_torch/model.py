"""webgan's networks and training step in PyTorch.

The layers are webgan's `NetSpec` (src/model/spec.rs) in the same order, so that a module's
state_dict names them as webgan's checkpoints do: "G.0.weight" is layer 0 of G in both. Only
batchnorm differs in form: PyTorch keeps weight, bias, running_mean and running_var where
webgan keeps "G.1.affine" [2, C] (gamma; beta) and "G.running.0" [2, C] (mean; var), one
stacked tensor for two (see checkpoint.py, which maps them).

The step is webgan's (and DCGAN-PyTorch's): D on a real batch (target 1) and on G(z) (target
0), gradients summed, Adam on D; then D, updated, on the same G(z) with target 1, back into G,
Adam on G; then the moving average of G's parameters, when it is on.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = ("kind", "image_size", "channels", "z_dim", "ngf", "ndf", "kernel")
KERNELS = {"seed5x5": (5, 2, 1), "k4s2p1": (4, 1, 0)}  # kernel, pad, output_padding (stride 2)


@dataclass
class Config:
    """A webgan ModelConfig: the architecture and the hyperparameters a checkpoint records."""

    kind: str = "dcgan"
    image_size: int = 32
    channels: int = 1
    z_dim: int = 100
    ngf: int = 32
    ndf: int = 32
    kernel: str = "seed5x5"
    batch: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    adam_eps: float = 1e-8
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    ema: float = 0.0
    seed: int = 1

    def __post_init__(self):
        if self.kind not in ("dcgan", "basic"):
            raise ValueError(f"unknown kind {self.kind!r} (dcgan or basic)")
        if self.kernel not in KERNELS:
            raise ValueError(f"unknown kernel {self.kernel!r} ({' or '.join(KERNELS)})")
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise ValueError(f"image_size {self.image_size}: a power of two, at least 8")
        if self.channels not in (1, 3):
            raise ValueError(f"channels {self.channels}: 1 or 3")

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> "Config":
        values = {}
        for f in fields(cls):
            if f.name in meta:
                kind = {"int": int, "float": float, "str": str}[f.type]
                try:
                    values[f.name] = kind(meta[f.name])
                except ValueError:
                    raise ValueError(f"{f.name}={meta[f.name]!r} is unreadable") from None
            elif f.name in ARCHITECTURE:
                raise ValueError(f"no {f.name!r} in the metadata")
        return cls(**values)

    def metadata(self) -> dict[str, str]:
        """As webgan writes them (Rust's f32 Display: the shortest form that reads back)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = _f32_text(v) if isinstance(v, float) else str(v)
        return out

    @property
    def stages(self) -> int:
        return (self.image_size // 4).bit_length() - 1

    @property
    def image_len(self) -> int:
        return self.channels * self.image_size * self.image_size


def _f32_text(v: float) -> str:
    """Rust's `f32::to_string`: the shortest decimal that reads back to the same f32, no exponent."""
    import numpy as np

    return np.format_float_positional(np.float32(v), unique=True, trim="-")


class Net(nn.ModuleList):
    """One network as webgan's layer list: module i is layer i (activations included), and each
    layer reshapes its input to the per-sample shape it expects (NCHW makes that free)."""

    def __init__(self, name: str, layers: list[tuple[nn.Module, tuple[int, ...]]]):
        super().__init__([m for m, _ in layers])
        self.name = name
        self.in_shapes = [s for _, s in layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        for layer, shape in zip(self, self.in_shapes):
            if shape:
                x = x.reshape(n, *shape)
            x = layer(x)
        return x

    def batchnorms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        return [m for m in self if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _bn(cfg: Config, channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=cfg.bn_eps, momentum=cfg.bn_momentum)


def generator(cfg: Config) -> Net:
    """z -> image in [-1, 1]: spec.rs's `generator`."""
    layers: list[tuple[nn.Module, tuple[int, ...]]] = []
    if cfg.kind == "dcgan":
        kernel, pad, out_pad = KERNELS[cfg.kernel]
        c = cfg.ngf << (cfg.stages - 1)
        layers += [(nn.Linear(cfg.z_dim, c * 16), (cfg.z_dim,)), (_bn(cfg, c), (c, 4, 4)), (nn.ReLU(), ())]
        hw = 4
        for s in range(cfg.stages):
            last = s + 1 == cfg.stages
            c_out = cfg.channels if last else c // 2
            conv = nn.ConvTranspose2d(c, c_out, kernel, stride=2, padding=pad, output_padding=out_pad)
            layers.append((conv, (c, hw, hw)))
            hw *= 2
            layers += [(nn.Tanh(), ())] if last else [(_bn(cfg, c_out), ()), (nn.ReLU(), ())]
            c = c_out
    else:
        d = cfg.z_dim
        for width in (8 * cfg.ngf, 16 * cfg.ngf, 32 * cfg.ngf):
            layers += [(nn.Linear(d, width), (d,)), (nn.ReLU(), ())]
            d = width
        layers += [(nn.Linear(d, cfg.image_len), (d,)), (nn.Tanh(), ())]
    net = Net("G", layers)
    net.out_shape = (cfg.channels, cfg.image_size, cfg.image_size)  # BasicGAN's output is flat
    return net


def discriminator(cfg: Config) -> Net:
    """image -> one logit: spec.rs's `discriminator`."""
    layers: list[tuple[nn.Module, tuple[int, ...]]] = []
    if cfg.kind == "dcgan":
        kernel, pad, _ = KERNELS[cfg.kernel]
        c, hw = cfg.channels, cfg.image_size
        for s in range(cfg.stages):
            c_out = cfg.ndf << s
            layers.append((nn.Conv2d(c, c_out, kernel, stride=2, padding=pad), (c, hw, hw)))
            hw //= 2
            if s > 0:
                layers.append((_bn(cfg, c_out), ()))
            layers.append((nn.LeakyReLU(0.2), ()))
            c = c_out
        layers.append((nn.Linear(c * hw * hw, 1), (c * hw * hw,)))
    else:
        d = cfg.image_len
        for width in (16 * cfg.ndf, 8 * cfg.ndf):
            layers += [(nn.Linear(d, width), (d,)), (nn.LeakyReLU(0.2), ())]
            d = width
        layers.append((nn.Linear(d, 1), (d,)))
    return Net("D", layers)


def init_like_webgan(net: Net, generator: torch.Generator | None = None) -> None:
    """The seed's initialisation in distribution (webgan's own draws come from its own RNG, so a
    run that must match webgan's starts from a webgan checkpoint instead): conv weights truncated
    normal std 0.02 (at 2 std), linear weights normal std 0.01, biases 0, batchnorm 1 and 0."""
    for m in net:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04, generator=generator)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01, generator=generator)
            nn.init.zeros_(m.bias)


class GAN(nn.Module):
    """G, D, their Adam optimisers and G's moving average: everything a webgan checkpoint holds.
    `G` and `D` are attributes, so `state_dict()` names tensors "G.0.weight" as webgan does."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.G = generator(cfg)
        self.D = discriminator(cfg)
        init_like_webgan(self.G)
        init_like_webgan(self.D)
        self.step_count = 0
        self.opt_g = self._adam(self.G)
        self.opt_d = self._adam(self.D)
        self.g_ema = [p.detach().clone() for p in self.G.parameters()] if cfg.ema > 0 else []

    def _adam(self, net: nn.Module) -> torch.optim.Adam:
        c = self.cfg
        # foreach=False: the plain per-tensor loop, the formula webgan's reference writes out.
        return torch.optim.Adam(net.parameters(), lr=c.lr, betas=(c.beta1, c.beta2), eps=c.adam_eps, foreach=False)

    def step(self, real: torch.Tensor, z: torch.Tensor) -> list[float]:
        """One training step. `real`: uint8 [N, C, H, W] (or already in [-1, 1] as float); `z`:
        [N, z_dim]. Returns webgan's six metrics: D's loss and mean D(x) on real, on fake, then
        G's loss and mean D(G(z)) after D's update."""
        x = real.float() / 127.5 - 1.0 if real.dtype == torch.uint8 else real

        def judged(images: torch.Tensor, target: float) -> list[torch.Tensor]:
            """D's BCE on `images` against `target`, its gradients added in; [loss, mean D(.)]."""
            logits = self.D(images)
            loss = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))
            loss.backward()
            return [loss, torch.sigmoid(logits).mean()]

        self.G.train()
        self.D.train()
        self.opt_d.zero_grad(set_to_none=False)
        real_metrics = judged(x, 1.0)
        fake = self.G(z).reshape(x.shape)
        fake_metrics = judged(fake.detach(), 0.0)
        self.opt_d.step()

        self.opt_g.zero_grad(set_to_none=False)
        gen_metrics = judged(fake, 1.0)
        self.opt_g.step()
        self.step_count += 1
        with torch.no_grad():
            for e, p in zip(self.g_ema, self.G.parameters()):
                e.mul_(self.cfg.ema).add_(p, alpha=1 - self.cfg.ema)
        return [v.item() for v in real_metrics + fake_metrics + gen_metrics]

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """G's images for z in inference mode (running statistics), NCHW in [-1, 1]."""
        was = self.G.training
        self.G.eval()
        out = self.G(z).reshape(z.shape[0], *self.G.out_shape)
        self.G.train(was)
        return out
