"""Reading and writing HuBERT-Soft checkpoints in bshall's published layout.

The published file (`hubert_pretrain/hubert-soft-0d54a1f4.pt`, from the bshall/hubert v0.1
GitHub release) is a flat state dict, keys prefixed with `module.` (DataParallel), 166 fp32 tensors
for 12 layers. Loading is strict: every key must map (`hubert.keymap`), every expected key must be
present and every shape must match, otherwise a `CheckpointError` names the file and the keys.
Only the two training-only tensors (`masked_spec_embed`, `label_embedding.weight`) are optional:
they do not affect the units, are kept when present and written back unchanged.
Weights stored in fp16 (as in the reference fixture) are cast to fp32.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from gvc.errors import CheckpointError
from gvc.fileio import save_torch
from gvc.statedict import layout_problems, listing
from hubert.keymap import TRAINING_ONLY_KEYS, bshall_to_ours, layer_indices, ours_to_bshall
from hubert.model import HubertSoftNet

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path("hubert_pretrain") / "hubert-soft-0d54a1f4.pt"
RELEASE_URL = "https://github.com/bshall/hubert/releases/tag/v0.1"
RELEASE_HINT = (
    f"download hubert-soft-0d54a1f4.pt from the bshall/hubert v0.1 GitHub release ({RELEASE_URL}) "
    f"into {DEFAULT_CHECKPOINT.parent}/, or pass the path of your copy"
)
PREFIX = "module."


def read_bshall_state(path: Path | str) -> dict[str, torch.Tensor]:
    """Read a bshall-layout file and return its state dict without the `module.` prefix.

    Args:
        path: the checkpoint file.

    Returns:
        bshall keys (e.g. `proj.weight`) -> tensors as stored (any float dtype).

    Raises:
        CheckpointError: the file is missing, unreadable, not a flat dict of tensors, or mixes
            prefixed and unprefixed keys.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"HuBERT-Soft checkpoint not found: {path}; {RELEASE_HINT}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt/unsafe files
        raise CheckpointError(
            f"{path}: cannot be read as a torch checkpoint ({exc}); {RELEASE_HINT}"
        ) from exc
    if (
        not isinstance(raw, dict)
        or not raw
        or not all(isinstance(v, torch.Tensor) for v in raw.values())
    ):
        raise CheckpointError(
            f"{path}: expected a flat state dict of tensors (bshall HuBERT-Soft layout), "
            f"found {type(raw).__name__}; {RELEASE_HINT}"
        )
    prefixed = [k for k in raw if k.startswith(PREFIX)]
    if prefixed and len(prefixed) != len(raw):
        plain = [k for k in raw if not k.startswith(PREFIX)]
        raise CheckpointError(
            f"{path}: keys mix the '{PREFIX}' prefix with unprefixed keys: {listing(plain)}"
        )
    return {k.removeprefix(PREFIX): v for k, v in raw.items()}


def expected_bshall_shapes(net: HubertSoftNet) -> dict[str, torch.Size]:
    """bshall keys (no prefix) -> shapes that `net` needs, training-only tensors excluded."""
    mapped = ours_to_bshall(net.state_dict())
    return {k: v.shape for k, v in mapped.items() if k not in TRAINING_ONLY_KEYS}


def net_from_bshall_state(state: dict[str, torch.Tensor], source: Path | str) -> HubertSoftNet:
    """Build a `HubertSoftNet` (fp32, eval mode) from a bshall-layout state dict, strictly.

    Args:
        state: bshall keys (no prefix) -> tensors.
        source: file name used in error messages.

    Raises:
        CheckpointError: unmapped keys, missing keys, shape mismatches, or no transformer layer.
    """
    indices = layer_indices(state.keys())
    if not indices:
        raise CheckpointError(
            f"{source}: no 'encoder.layers.N.*' keys, so not a HuBERT-Soft state dict; "
            f"use the unmodified hubert-soft-0d54a1f4.pt from {RELEASE_URL}"
        )
    num_layers = max(indices) + 1
    if len(indices) != num_layers:
        gaps = sorted(set(range(num_layers)) - indices)
        raise CheckpointError(
            f"{source}: transformer layer(s) {gaps} missing between 0 and {num_layers - 1}; "
            f"use the unmodified hubert-soft-0d54a1f4.pt from {RELEASE_URL}"
        )
    with torch.device("meta"):  # no random init: every tensor is replaced by the file's
        net = HubertSoftNet(num_layers)
    expected = expected_bshall_shapes(net)
    optional = {
        "masked_spec_embed": torch.Size([768]),
        "label_embedding.weight": None,  # [num_labels, 256]; the label count is free
    }
    problems = layout_problems(expected, state, optional=list(optional))
    embed = state.get("masked_spec_embed")
    if embed is not None and embed.shape != optional["masked_spec_embed"]:
        problems.append(f"shape mismatch: masked_spec_embed {tuple(embed.shape)} vs model (768,)")
    label = state.get("label_embedding.weight")
    if label is not None and (label.ndim != 2 or label.shape[1] != 256):
        problems.append(
            f"shape mismatch: label_embedding.weight {tuple(label.shape)} vs model (N, 256)"
        )
    if problems:
        raise CheckpointError(
            f"{source}: not a bshall HuBERT-Soft state dict with {num_layers} layer(s): "
            + "; ".join(problems)
            + f"; use the unmodified hubert-soft-0d54a1f4.pt from {RELEASE_URL}"
        )
    tensors = {k: v.float().contiguous() for k, v in state.items() if k not in optional}
    ours = bshall_to_ours(tensors)
    net.load_state_dict(ours, strict=True, assign=True)
    leftover = [n for n, t in [*net.named_parameters(), *net.named_buffers()] if t.is_meta]
    if leftover:  # cannot happen with a strict load; guards against a future transformers change
        raise CheckpointError(f"{source}: tensors not set by the checkpoint: {listing(leftover)}")
    net.set_training_only(state.get("masked_spec_embed"), state.get("label_embedding.weight"))
    net.eval()
    log.debug("loaded HuBERT-Soft from %s: %d layer(s), %d tensors", source, num_layers, len(state))
    return net


def load_net(path: Path | str = DEFAULT_CHECKPOINT) -> HubertSoftNet:
    """Read `path` (bshall layout) and return the strictly loaded network on CPU, fp32, eval
    mode."""
    return net_from_bshall_state(read_bshall_state(path), path)


def bshall_state(net: HubertSoftNet) -> dict[str, torch.Tensor]:
    """`net`'s weights in the published layout: `module.`-prefixed flat dict of fp32 CPU tensors."""
    mapped = ours_to_bshall(net.state_dict())
    return {PREFIX + k: v.detach().to("cpu", torch.float32).contiguous() for k, v in mapped.items()}


def save_checkpoint(net: HubertSoftNet, path: Path | str) -> Path:
    """Write `net` in bshall's published layout (atomically); returns the path."""
    path = Path(path)
    save_torch(path, bshall_state(net))
    return path


def save_random_checkpoint(path: Path | str, num_layers: int = 12, seed: int = 0) -> Path:
    """Write a randomly initialised HuBERT-Soft in the published bshall layout.

    Used by the demo, tests and benchmarks when the real weights are absent; its units are
    meaningless for conversion but have the right shapes, rates and cost. The global RNG state
    is left untouched.

    Args:
        path: destination file (parent folders are created).
        num_layers: transformer layers (12 as published).
        seed: RNG seed; the same seed gives the same file content.

    Returns:
        The path written.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = HubertSoftNet(num_layers)
        net.set_training_only(torch.rand(768), torch.randn(100, 256))
    return save_checkpoint(net, path)
