"""The fine-tuned end of EfficientNet-Lite and the heads above it, for training only (imports torch)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sveta.embed.effnet import MEAN, STD, mid_blocks, stage_starts
from sveta.learn.attribute_net import AttributeNet


def first_trained_block(model: Any, stages: int) -> int:
    """The block where the last ``stages`` stages begin (every stage: the stem is trained too)."""
    starts = stage_starts(model)
    if not 1 <= stages <= len(starts):
        raise ValueError(f"stages must be 1..{len(starts)}")
    return starts[-stages]


class Front(nn.Module):
    """The frozen start: uint8 pixels -> (pooled outputs of the mid blocks before the cut, the cut's input tensor)."""

    def __init__(self, model: Any, start: int, whole: bool) -> None:
        super().__init__()
        self.model, self.start, self.whole = model, start, whole
        self.mids = [i for i in mid_blocks(model) if i < start]

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        x = ((pixels.float() - MEAN) / STD).permute(0, 3, 1, 2)
        if self.whole:  # the stem is trained too: the cut is the normalised photo
            return _none(x), x
        x = m._swish(m._bn0(m._conv_stem(x)))
        mids = []
        for index, block in enumerate(m._blocks[: self.start]):
            x = block(x, drop_connect_rate=None)
            if index in self.mids:
                mids.append(x.mean((2, 3)))
        return (torch.cat(mids, 1) if mids else _none(x)), x


def _none(x: torch.Tensor) -> torch.Tensor:
    # (batch, 0) by slicing, not new_zeros: the exported graph then keeps the batch size dynamic
    return x[:, :0, 0, 0]


class Tail(nn.Module):
    """The trained end: the cut's input -> (pooled head features, the mid blocks' pooled outputs from the cut on).

    Its layers are the network's own modules, so training them fine-tunes the network that is then exported.
    """

    def __init__(self, model: Any, start: int, whole: bool) -> None:
        super().__init__()
        self.model, self.start, self.whole = model, start, whole
        self.mids = [i for i in mid_blocks(model) if i >= start]

    def forward(self, cut: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        x = m._swish(m._bn0(m._conv_stem(cut))) if self.whole else cut
        mids = []
        for index in range(self.start, len(m._blocks)):
            x = m._blocks[index](x, drop_connect_rate=None)
            if index in self.mids:
                mids.append(x.mean((2, 3)))
        return m._swish(m._bn1(m._conv_head(x))).mean((2, 3)), torch.cat(mids, 1)

    def trained_parameters(self) -> list[nn.Parameter]:
        m = self.model
        layers: list[nn.Module] = [*m._blocks[self.start :], m._conv_head, m._bn1]
        if self.whole:
            layers += [m._conv_stem, m._bn0]
        return [p for layer in layers for p in layer.parameters()]


class FineTuneNet(nn.Module):
    """Tail -> the learning features (unit-norm pooled and mid, colour descriptors) -> standardised -> heads."""

    def __init__(self, tail: Tail, heads: AttributeNet, mu: torch.Tensor, sd: torch.Tensor) -> None:
        super().__init__()
        self.tail, self.heads = tail, heads
        self.mu: torch.Tensor
        self.sd: torch.Tensor
        self.register_buffer("mu", mu)
        self.register_buffer("sd", sd)

    def features(self, cut: torch.Tensor, prefix: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
        pooled, mid = self.tail(cut)
        unit = nn.functional.normalize
        return torch.cat([unit(pooled, dim=1), unit(torch.cat([prefix, mid], 1), dim=1), colour], 1)

    def forward(
        self, cut: torch.Tensor, prefix: torch.Tensor, colour: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        x = (self.features(cut, prefix, colour) - self.mu) / self.sd
        return self.heads(x)
