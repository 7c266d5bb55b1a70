"""The compatibility model's torch network, for training only (imported once torch is known to be installed)."""

from __future__ import annotations

import torch
from torch import nn


class CompatNet(nn.Module):
    """Photo features -> a unit embedding, with one learned mask of its dimensions per pair of item types."""

    def __init__(self, dim: int, n_pairs: int, *, hidden: int, embedding: int, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, embedding)
        self.drop = nn.Dropout(dropout)
        # Vasileva et al. start the masks near 0.9 with spread, so pairs can diverge from the first steps.
        self.masks = nn.Parameter(torch.randn(n_pairs, embedding) * 0.1 + 0.9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc2(self.drop(torch.relu(self.fc1(x))))
        return z / z.norm(dim=1, keepdim=True).clamp_min(1e-9)
