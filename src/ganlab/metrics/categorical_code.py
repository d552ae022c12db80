"""How well a categorical latent code captures the classes, unsupervised (InfoGAN, Chen et al. 2016, section
7.1): images drawn for every code value, classified by the domain classifier, and the confusion matrix
(code value x class) scored after the best one-to-one matching of code values to classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn


def best_matching_error(confusion: Tensor) -> tuple[float, list[int]]:
    """Error after the best one-to-one assignment of rows (code values) to columns (classes), and the assignment.

    ``confusion[i, j]``: how many images of code value i were classified as j; needs rows <= columns. Exact: a
    DP over the subsets of columns taken by the first rows (10 x 2^10 states for 10 x 10). Returns
    (1 - matched / total, matching) with ``matching[i]`` the class that code value i is assigned to.
    """
    confusion = torch.as_tensor(confusion, dtype=torch.float64)
    rows, cols = confusion.shape
    if rows > cols:
        raise ValueError(f"best_matching_error needs rows <= columns, got {rows} x {cols}")
    total = confusion.sum().item()
    if total <= 0:
        raise ValueError("best_matching_error needs a confusion matrix with a positive total")
    values = confusion.tolist()
    best = {0: 0.0}  # mask of columns taken by rows 0..r-1 -> the largest matched count
    choice: dict[int, tuple[int, int]] = {}  # mask -> (previous mask, column given to the last row)
    for row in range(rows):
        frontier: dict[int, float] = {}
        for mask, score in best.items():
            for col in range(cols):
                if mask >> col & 1:
                    continue
                new, candidate = mask | 1 << col, score + values[row][col]
                if candidate > frontier.get(new, -1.0):
                    frontier[new] = candidate
                    choice[new] = (mask, col)
        best = frontier
    mask = max(best, key=best.get)
    matched, matching = best[mask], [0] * rows
    for row in reversed(range(rows)):
        mask, matching[row] = choice[mask]
    return 1.0 - matched / total, matching


@torch.no_grad()
def code_confusion(
    generate: Callable[[Tensor], Tensor],
    classifier: nn.Module,
    num_codes: int,
    num_classes: int,
    per_code: int,
    batch_size: int = 500,
) -> Tensor:
    """(num_codes, num_classes) counts of ``per_code`` images a code value: ``generate(codes (B,))`` draws them."""
    codes = torch.arange(num_codes).repeat_interleave(per_code)  # (N,)
    confusion = torch.zeros(num_codes, num_classes, dtype=torch.long)
    for batch in codes.split(batch_size):
        predicted = classifier(generate(batch)).argmax(1).cpu()  # (B,)
        confusion += torch.bincount(batch * num_classes + predicted, minlength=num_codes * num_classes).view(
            num_codes, num_classes
        )
    return confusion


def code_scores(confusion: Tensor) -> dict[str, Any]:
    """The error after the best matching, the matching (the class of each code value), each code value's share
    of images in its matched class, and the confusion matrix."""
    error, matching = best_matching_error(confusion)
    per_code = [(confusion[i, c] / confusion[i].sum().clamp_min(1)).item() for i, c in enumerate(matching)]
    return {
        "code_error": error,
        "code_matching": matching,
        "code_accuracy_per_code": per_code,
        "code_confusion": confusion.tolist(),
    }
