"""Reading and writing NSF-BigVGAN checkpoints in the published layout.

The published `bigvgan_pretrain/nsf_bigvgan_pretrain_32K.pth` is `{'model_g': state_dict,
'model_d': discriminator state_dict}`; Grad-SVC reads only `model_g`, and so does this module.
Weight-normed convolutions are stored as `weight_g` [d0, 1, 1] and `weight_v` (the weight's
shape, first dimension d0), with `weight = weight_g * weight_v / ||weight_v||`, the norm taken
over all but dimension 0 (output channels of a Conv1d, input channels of a ConvTranspose1d).
Loading is strict: every key of the layout must be present with its shape, and nothing else.
The weight norm is then folded into plain `weight` tensors for inference.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import yaml

from gvc.errors import CheckpointError, ConfigError
from gvc.statedict import layout_problems
from vocoder.bigvgan import BigVGANConfig, NSFBigVGANGenerator

logger = logging.getLogger(__name__)

PUBLISHED_PATH = "bigvgan_pretrain/nsf_bigvgan_pretrain_32K.pth"
WHERE_TO_GET = (
    "download nsf_bigvgan_pretrain_32K.pth from the NSF-BigVGAN release linked in the Grad-SVC "
    "README "
    "(github.com/PlayVoice/NSF-BigVGAN/releases)"
)


def load_bigvgan_config(path: str | Path) -> BigVGANConfig:
    """Parse the `gen:` block (and `audio.sampling_rate`) of an NSF-BigVGAN yaml.

    Raises:
        ConfigError: unreadable file or missing/ill-typed keys.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read vocoder config {path}: {exc}") from exc
    gen = data.get("gen") if isinstance(data, dict) else None
    if not isinstance(gen, dict):
        raise ConfigError(
            f"vocoder config {path} has no 'gen:' block; pass NSF-BigVGAN's nsf_bigvgan.yaml"
        )
    try:
        audio = data.get("audio") or {}
        return BigVGANConfig(
            mel_channels=int(gen["mel_channels"]),
            upsample_rates=tuple(int(v) for v in gen["upsample_rates"]),
            upsample_kernel_sizes=tuple(int(v) for v in gen["upsample_kernel_sizes"]),
            upsample_initial_channel=int(gen["upsample_initial_channel"]),
            resblock_kernel_sizes=tuple(int(v) for v in gen["resblock_kernel_sizes"]),
            resblock_dilation_sizes=tuple(
                tuple(int(d) for d in ds) for ds in gen["resblock_dilation_sizes"]
            ),
            sampling_rate=int(audio.get("sampling_rate", 32000)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"vocoder config {path}: bad or missing gen.{exc}; compare with nsf_bigvgan.yaml"
        ) from exc


def published_layout(model: NSFBigVGANGenerator) -> dict[str, tuple[int, ...]]:
    """Key -> shape of `model`'s state dict as published (weight-normed convs as `weight_g/_v`)."""
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for name, _ in model.weight_norm_modules():
        w = shapes.pop(f"{name}.weight")
        shapes[f"{name}.weight_g"] = (w[0],) + (1,) * (len(w) - 1)
        shapes[f"{name}.weight_v"] = w
    return shapes


def fold_weight_norm(
    state: dict[str, torch.Tensor], model: NSFBigVGANGenerator
) -> dict[str, torch.Tensor]:
    """Replace each `weight_g`/`weight_v` pair of `state` by `weight = g * v / ||v||`."""
    out = dict(state)
    for name, _ in model.weight_norm_modules():
        g = out.pop(f"{name}.weight_g").float()
        v = out.pop(f"{name}.weight_v").float()
        norm = v.flatten(1).norm(dim=1).view((-1,) + (1,) * (v.dim() - 1))
        out[f"{name}.weight"] = v * (g / norm)
    return out


def unfold_weight_norm(
    state: dict[str, torch.Tensor], model: NSFBigVGANGenerator
) -> dict[str, torch.Tensor]:
    """Inverse of `fold_weight_norm`: `weight_v = weight`, `weight_g = ||weight||`."""
    out = dict(state)
    for name, _ in model.weight_norm_modules():
        w = out.pop(f"{name}.weight")
        out[f"{name}.weight_v"] = w.clone()
        out[f"{name}.weight_g"] = w.flatten(1).norm(dim=1).view((-1,) + (1,) * (w.dim() - 1))
    return out


def _read_generator_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(
            f"NSF-BigVGAN checkpoint not found: {path}; put the published file at {PUBLISHED_PATH} "
            f"or "
            f"pass --vocoder-ckpt PATH ({WHERE_TO_GET}); the griffinlim vocoder needs no weights "
            f"(preview only)"
        )
    try:
        ckpt: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a usable checkpoint"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"cannot read vocoder checkpoint {path}: {reason}") from exc
    if not isinstance(ckpt, dict) or "model_g" not in ckpt:
        found = sorted(map(str, ckpt))[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{path} is not an NSF-BigVGAN checkpoint: no 'model_g' entry (found {found}); "
            f"pass the generator file {Path(PUBLISHED_PATH).name}"
        )
    # 'model_d' (the discriminator) and any training state are not needed for inference.
    state = ckpt["model_g"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: 'model_g' is not a state dict")
    return state


def _config_for(
    state: dict[str, torch.Tensor], config: BigVGANConfig | None, path: Path
) -> BigVGANConfig:
    pre = state.get("conv_pre.weight_v")
    if pre is None or pre.dim() != 3:
        raise CheckpointError(
            f"{path}: 'model_g' lacks conv_pre.weight_v; not an NSF-BigVGAN generator"
        )
    channels, mels = int(pre.shape[0]), int(pre.shape[1])
    if config is None:
        config = BigVGANConfig(upsample_initial_channel=channels, mel_channels=mels)
        logger.debug("vocoder config inferred from %s: upsample_initial_channel=%d", path, channels)
    elif (config.upsample_initial_channel, config.mel_channels) != (channels, mels):
        raise CheckpointError(
            f"{path} has conv_pre [{channels}, {mels}, 7] but the vocoder config says "
            f"upsample_initial_channel={config.upsample_initial_channel}, "
            f"mel_channels={config.mel_channels}; "
            "pass the yaml that came with this checkpoint"
        )
    return config


def load_generator(
    ckpt_path: str | Path, config: BigVGANConfig | None = None
) -> NSFBigVGANGenerator:
    """Build the generator and load `model_g` strictly, with the weight norm folded.

    Args:
        ckpt_path: checkpoint holding `model_g` (published layout).
        config: architecture; inferred from `conv_pre`'s shape (other values published) if None.

    Raises:
        CheckpointError: missing file, no `model_g`, or any missing/unexpected/mis-shaped key.
    """
    path = Path(ckpt_path)
    state = _read_generator_state(path)
    config = _config_for(state, config, path)
    with torch.device("meta"):  # no random init: every tensor comes from the checkpoint
        model = NSFBigVGANGenerator(config)
    layout = published_layout(model)
    parts = layout_problems(layout, state)
    if parts:
        raise CheckpointError(
            f"{path} does not match the NSF-BigVGAN generator (upsample_initial_channel="
            f"{config.upsample_initial_channel}): {'; '.join(parts)}; pass the matching "
            f"--vocoder-config or "
            f"the published {Path(PUBLISHED_PATH).name}"
        )
    folded = {k: v.float() for k, v in fold_weight_norm(state, model).items()}
    model.load_state_dict(folded, strict=True, assign=True)
    return model.eval().requires_grad_(False)


def save_random_checkpoint(
    path: str | Path, upsample_initial_channel: int = 320, seed: int = 0
) -> Path:
    """Write a randomly initialised generator in the published layout (for demos and benchmarks).

    The file is `{'model_g': state_dict with weight_g/weight_v, 'model_d': {}}`. Convolution
    weights follow NSF-BigVGAN's init (N(0, 0.01) for the upsamplers and AMP convolutions).

    Returns:
        The path written.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # module construction must not disturb the global RNG
        model = NSFBigVGANGenerator(
            BigVGANConfig(upsample_initial_channel=upsample_initial_channel)
        )
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for key, value in state.items():
        if key.startswith("m_source") or ".act." in key or key.endswith("filter"):
            continue  # fixed buffers and SnakeBeta logs (zeros, as initialised)
        if key.endswith("bias"):
            state[key] = torch.randn(value.shape, generator=gen) * 0.01
        elif "ups." in key or ".convs" in key:
            state[key] = torch.randn(value.shape, generator=gen) * 0.01
        else:  # conv_pre, noise_convs, conv_post: PyTorch's default uniform(+-1/sqrt(fan_in))
            fan_in = value.shape[1] * value.shape[2]
            state[key] = (torch.rand(value.shape, generator=gen) * 2 - 1) / fan_in**0.5
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_g": unfold_weight_norm(state, model), "model_d": {}}, path)
    return path
