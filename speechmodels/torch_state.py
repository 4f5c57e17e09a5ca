"""Reading published PyTorch checkpoints: the state dict under its keys, and weight
normalisation stored as its two factors."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from speechmodels.weights import WeightsNotFound


def read_checkpoint(path, *keys: str) -> dict[str, torch.Tensor]:
    """``torch.load`` (tensors only) and the state dict under ``keys`` (e.g. "model", "generator")."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which
        raise WeightsNotFound(f"cannot read the checkpoint {path}: {exc}") from exc
    for key in keys:
        if not isinstance(state, dict) or key not in state:
            raise WeightsNotFound(f"{path} has no {'/'.join(keys)} state dict")
        state = state[key]
    return state


def fold_weight_norm(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``X.weight_g`` + ``X.weight_v`` (torch's legacy weight_norm, dim 0), or the
    ``X.parametrizations.weight.original0/1`` pair of its newer form, as one ``X.weight``."""
    folded: dict[str, torch.Tensor] = {}
    pairs = {"weight_g": "weight_v", "parametrizations.weight.original0": "parametrizations.weight.original1"}
    for key, tensor in state.items():
        for magnitude, direction in pairs.items():
            if key.endswith(magnitude):
                prefix = key[: -len(magnitude)]
                v = state[prefix + direction]
                norm = v.reshape(v.shape[0], -1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
                folded[prefix + "weight"] = tensor.reshape(norm.shape) * v / norm
                break
        else:
            if not any(key.endswith(direction) for direction in pairs.values()):
                folded[key] = tensor
    return folded
