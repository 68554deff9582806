"""Explicit key mapping between bshall's HuBERT-Soft state dict and `HubertSoftNet`'s.

The published file `hubert-soft-0d54a1f4.pt` (bshall/hubert v0.1) is a flat state dict whose keys
carry the DataParallel prefix `module.`; this module works on keys *without* that prefix (see
`hubert.checkpoint` for reading and writing files). Our network wraps `transformers.HubertModel`
under `hubert.` and adds `proj`, so the mapping is a fixed table plus three structural changes:

* the fused self-attention input projection `in_proj_weight` [3·768, 768] (and `in_proj_bias`
  [3·768]) is split, in order, into `q_proj`, `k_proj`, `v_proj`; writing concatenates them back;
* the weight-normed positional convolution keeps its tensors under new names:
  `weight_g` [1, 1, 128] ↔ `parametrizations.weight.original0` and `weight_v` [768, 48, 128] ↔
  `parametrizations.weight.original1` (both use weight norm over dim 2, so no reshaping);
* the training-only tensors `masked_spec_embed` [768] and `label_embedding.weight` [100, 256] are
  kept verbatim (as buffers `masked_spec_embed` / `label_embedding_weight`) so that a written file
  equals the one read, but they never take part in computing units.

Both directions are total on their layouts and inverse to each other; an unknown key raises
`KeyError` here and becomes a `CheckpointError` naming the file in `hubert.checkpoint`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch

#: Training-only bshall keys: accepted, stored, written back, and ignored by `units()`.
TRAINING_ONLY_KEYS = ("masked_spec_embed", "label_embedding.weight")
_TRAINING_ONLY_OURS = {
    "masked_spec_embed": "masked_spec_embed",
    "label_embedding.weight": "label_embedding_weight",
}

_HF = "hubert."
_ENC = _HF + "encoder."

# Fixed, one-to-one renames (bshall key -> our key), outside the transformer layers.
_FIXED: dict[str, str] = {
    "feature_extractor.norm0.weight": _HF + "feature_extractor.conv_layers.0.layer_norm.weight",
    "feature_extractor.norm0.bias": _HF + "feature_extractor.conv_layers.0.layer_norm.bias",
    "feature_projection.norm.weight": _HF + "feature_projection.layer_norm.weight",
    "feature_projection.norm.bias": _HF + "feature_projection.layer_norm.bias",
    "feature_projection.projection.weight": _HF + "feature_projection.projection.weight",
    "feature_projection.projection.bias": _HF + "feature_projection.projection.bias",
    "positional_embedding.conv.weight_g": _ENC
    + "pos_conv_embed.conv.parametrizations.weight.original0",
    "positional_embedding.conv.weight_v": _ENC
    + "pos_conv_embed.conv.parametrizations.weight.original1",
    "positional_embedding.conv.bias": _ENC + "pos_conv_embed.conv.bias",
    "norm.weight": _ENC + "layer_norm.weight",
    "norm.bias": _ENC + "layer_norm.bias",
    "proj.weight": "proj.weight",
    "proj.bias": "proj.bias",
    **{
        f"feature_extractor.conv{i}.weight": _HF + f"feature_extractor.conv_layers.{i}.conv.weight"
        for i in range(7)
    },
    **_TRAINING_ONLY_OURS,
}
_FIXED_INV = {v: k for k, v in _FIXED.items()}

# Per-layer renames inside `encoder.layers.{i}.` (bshall suffix -> our suffix), except in_proj.
_LAYER: dict[str, str] = {
    "self_attn.out_proj.weight": "attention.out_proj.weight",
    "self_attn.out_proj.bias": "attention.out_proj.bias",
    "linear1.weight": "feed_forward.intermediate_dense.weight",
    "linear1.bias": "feed_forward.intermediate_dense.bias",
    "linear2.weight": "feed_forward.output_dense.weight",
    "linear2.bias": "feed_forward.output_dense.bias",
    "norm1.weight": "layer_norm.weight",
    "norm1.bias": "layer_norm.bias",
    "norm2.weight": "final_layer_norm.weight",
    "norm2.bias": "final_layer_norm.bias",
}
_LAYER_INV = {v: k for k, v in _LAYER.items()}
_QKV = ("q_proj", "k_proj", "v_proj")

_BSHALL_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.(.+)$")
_OURS_LAYER = re.compile(r"^hubert\.encoder\.layers\.(\d+)\.(.+)$")
_OURS_QKV = re.compile(r"^attention\.([qkv])_proj\.(weight|bias)$")


def layer_indices(bshall_keys: Iterable[str]) -> set[int]:
    """The transformer layer indices N present as `encoder.layers.N.*` in bshall-layout keys."""
    return {int(m.group(1)) for k in bshall_keys if (m := _BSHALL_LAYER.match(k))}


def bshall_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a bshall-layout state dict (no `module.` prefix) to `HubertSoftNet` keys.

    Args:
        state: bshall keys -> tensors, e.g. `encoder.layers.0.self_attn.in_proj_weight` [2304, 768].

    Returns:
        Our keys -> tensors; fused `in_proj_*` tensors become three equal chunks (q, k, v).

    Raises:
        KeyError: listing every key that has no mapping.
        ValueError: an `in_proj_*` tensor whose first dimension is not divisible by 3.
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state.items():
        if key in _FIXED:
            out[_FIXED[key]] = value
            continue
        m = _BSHALL_LAYER.match(key)
        if m is None:
            unknown.append(key)
            continue
        prefix, suffix = f"{_ENC}layers.{m.group(1)}.", m.group(2)
        if suffix in _LAYER:
            out[prefix + _LAYER[suffix]] = value
        elif suffix in ("self_attn.in_proj_weight", "self_attn.in_proj_bias"):
            kind = "weight" if suffix.endswith("weight") else "bias"
            if value.shape[0] % 3:
                raise ValueError(
                    f"{key}: first dimension {value.shape[0]} is not divisible by 3 (q, k, v)"
                )
            for name, chunk in zip(_QKV, value.chunk(3, dim=0), strict=True):
                out[f"{prefix}attention.{name}.{kind}"] = chunk
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(sorted(unknown))
    return out


def ours_to_bshall(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map `HubertSoftNet` keys back to the bshall layout (no `module.` prefix).

    Args:
        state: our keys -> tensors (e.g. `HubertSoftNet.state_dict()`).

    Returns:
        bshall keys -> tensors; q/k/v projections are concatenated into `in_proj_weight`
        [3·768, 768] and `in_proj_bias` [3·768] in the order q, k, v.

    Raises:
        KeyError: listing every key that has no mapping, or a layer whose q/k/v set is incomplete.
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    fused: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key in _FIXED_INV:
            out[_FIXED_INV[key]] = value
            continue
        m = _OURS_LAYER.match(key)
        if m is None:
            unknown.append(key)
            continue
        layer, suffix = m.group(1), m.group(2)
        if suffix in _LAYER_INV:
            out[f"encoder.layers.{layer}.{_LAYER_INV[suffix]}"] = value
        elif (q := _OURS_QKV.match(suffix)) is not None:
            fused.setdefault((layer, q.group(2)), {})[q.group(1)] = value
        else:
            unknown.append(key)
    for (layer, kind), parts in sorted(fused.items()):
        if set(parts) != {"q", "k", "v"}:
            unknown.extend(f"{_ENC}layers.{layer}.attention.{p}_proj.{kind}" for p in parts)
            continue
        name = "in_proj_weight" if kind == "weight" else "in_proj_bias"
        out[f"encoder.layers.{layer}.self_attn.{name}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]], dim=0
        )
    if unknown:
        raise KeyError(sorted(unknown))
    return out
