"""``--device``: ``auto`` is CUDA when available, else the CPU (docs/data-contracts.md, section
"Command-line conventions"). In ``common`` because the model and retrieval's embedders both
choose a device, and must choose it the same way."""

from __future__ import annotations

import torch

from common.errors import UserError


def resolve_device(name: str) -> torch.device:
    """The torch device ``name`` names; an unknown or unavailable device is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise UserError(f"--device {name}: not a torch device ({e})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    return device
