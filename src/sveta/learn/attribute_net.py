"""The attribute model's torch network, for training only (imported once torch is known to be installed)."""

from __future__ import annotations

import torch
from torch import nn


class AttributeNet(nn.Module):
    """Dropout, a shared ReLU layer, then one linear head per attribute beside a supervised-contrastive embedding."""

    def __init__(
        self, dim: int, sizes: list[int], *, hidden: int, embedding: int, input_dropout: float, dropout: float
    ) -> None:
        super().__init__()
        self.in_drop, self.drop = nn.Dropout(input_dropout), nn.Dropout(dropout)
        self.fc = nn.Linear(dim, hidden)
        self.emb = nn.Linear(hidden, embedding)
        self.heads: list[nn.Linear] = [nn.Linear(hidden, n) for n in sizes]  # typed; the ModuleList registers them
        self.head_modules = nn.ModuleList(self.heads)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        z = torch.relu(self.fc(self.in_drop(x)))
        return [head(self.drop(z)) for head in self.heads], self.emb(z)
