"""Conditional accuracy: how often the domain classifier sees the class a conditional generator was asked for.

The score of cGAN and ACGAN beside FID: ``per_class`` images of every class, generated with that label, are
classified by the same domain classifier that FID's features come from (trained on the real data only).
``python evaluate.py ckpt_path=...`` reports it for class-conditional checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn


@torch.no_grad()
def conditional_accuracy(
    generate: Callable[[Tensor], Tensor],
    classifier: nn.Module,
    num_classes: int,
    per_class: int = 1000,
    batch_size: int = 500,
) -> dict[str, Any]:
    """``generate(labels (B,))`` -> (B, C, H, W) in [-1, 1]; returns the overall and per-class accuracy."""
    classifier.eval()
    labels = torch.arange(num_classes).repeat_interleave(per_class)  # (N * per_class,)
    correct = torch.zeros(num_classes)
    for batch in labels.split(batch_size):
        images = generate(batch)
        predicted = classifier(images.to(next(classifier.parameters()).device)).argmax(1).cpu()  # (B,)
        correct += torch.bincount(batch[predicted == batch], minlength=num_classes).float()
    per_class_accuracy = correct / per_class
    return {
        "conditional_accuracy": per_class_accuracy.mean().item(),
        "conditional_accuracy_per_class": per_class_accuracy.tolist(),
    }
