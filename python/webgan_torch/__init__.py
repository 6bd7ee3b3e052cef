"""webgan's DCGAN and BasicGAN in PyTorch, reading and writing webgan's checkpoints and the
page's generator files, so a run can leave the browser for PyTorch (and `torchrun`) and come back."""

from .checkpoint import (
    CheckpointError,
    checkpoint_tensors,
    load_checkpoint,
    load_generator,
    read_config,
    save_checkpoint,
    save_generator,
)
from .model import GAN, Config, discriminator, generator

__all__ = [
    "GAN",
    "CheckpointError",
    "Config",
    "checkpoint_tensors",
    "discriminator",
    "generator",
    "load_checkpoint",
    "load_generator",
    "read_config",
    "save_checkpoint",
    "save_generator",
]
