"""Fine-tuning's joint training loop: the CNN's tail and the heads, on cached inputs (imports torch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from sveta.learn.finetune_net import FineTuneNet, Tail
from sveta.learn.heads import AttributeModel
from sveta.learn.train import IGNORE, Recipe, make_net, multi_task_loss, warm_start
from sveta.progress import Progress

if TYPE_CHECKING:
    from sveta.learn.backbone import CutExtractor
    from sveta.learn.finetune import Block, FineTune


@dataclass
class Batches:
    """Every training row of every view: the tail's input, the frozen mid features, colour descriptors, labels."""

    cut: torch.Tensor
    prefix: torch.Tensor
    colour: torch.Tensor
    y: torch.Tensor

    @classmethod
    def of(cls, views: Sequence[Block], row_of: dict[int, int], y: np.ndarray, extractor: CutExtractor) -> Batches:
        rows = [b.rows[[j for j, k in enumerate(b.keys) if k in row_of]] for b in views]
        labels = [y[[row_of[k] for k in b.keys if k in row_of]] for b in views]
        prefix, colour, cut = extractor.split(np.concatenate(rows))

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, np.float32))

        return cls(tensor(cut), tensor(prefix), tensor(colour), torch.from_numpy(np.concatenate(labels)))

    def __len__(self) -> int:
        return len(self.y)


def train_jointly(
    tail: Tail,
    frozen: AttributeModel,
    attributes: list[str],
    batches: Batches,
    ft: FineTune,
    device: str,
    recipe: Recipe,
    on_epoch: Progress | None,
) -> FineTuneNet:
    """Start from the frozen recipe's heads and the pretrained tail; train both, the tail at a lower rate."""
    net = _net(tail, frozen, recipe).to(device)
    trained = tail.trained_parameters()
    for parameter in tail.model.parameters():
        parameter.requires_grad_(False)
    for parameter in trained:
        parameter.requires_grad_(True)
    groups = [{"params": trained, "lr": ft.backbone_lr}, {"params": list(net.heads.parameters()), "lr": ft.lr}]
    optimiser = torch.optim.AdamW(groups, weight_decay=recipe.weight_decay)
    per_epoch = -(-len(batches) // ft.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, [ft.backbone_lr, ft.lr], total_steps=ft.epochs * per_epoch, pct_start=0.1
    )
    ce = torch.nn.CrossEntropyLoss(label_smoothing=recipe.smoothing, ignore_index=IGNORE)
    generator = torch.Generator().manual_seed(recipe.seed)
    for epoch in range(ft.epochs):
        net.train()
        tail.model.eval()  # batch norm keeps its ImageNet statistics: small batches would only add noise
        for batch in torch.randperm(len(batches), generator=generator).split(ft.batch):
            inputs = (t[batch].to(device) for t in (batches.cut, batches.prefix, batches.colour))
            logits, embedding = net(*inputs)
            loss = multi_task_loss(ce, logits, embedding, batches.y[batch].to(device), attributes, recipe)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        if on_epoch:
            on_epoch(epoch + 1, ft.epochs)
    return net.eval()


def _net(tail: Tail, frozen: AttributeModel, recipe: Recipe) -> FineTuneNet:
    w = frozen.weights
    heads = make_net(w["fc_w"].shape[1], [len(names) for names in frozen.classes.values()], recipe)
    warm_start(heads, frozen, dict(frozen.classes))
    mu, sd = (torch.from_numpy(np.asarray(a, np.float32)) for a in (w["mu"], w["sd"]))
    return FineTuneNet(tail, heads, mu, sd)
