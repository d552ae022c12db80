"""The semi-supervised GAN pair of Salimans et al. 2016 for MNIST ("Improved techniques for training GANs",
section 5 and their ``train_mnist_feature_matching.py``).

D is a classifier with N logits and no separate real/fake output: the fake class's logit is implied as 0, so
D(x) = Z(x) / (Z(x) + 1) with Z(x) = sum_k exp(l_k(x)), i.e. the real/fake logit is logsumexp_k l_k(x).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GaussianNoise(nn.Module):
    """Adds N(0, std^2) noise in training only: the regularizer Salimans et al. put before every D layer."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        return x + self.std * x.new_empty(x.shape).normal_() if self.training and self.std > 0 else x


class NormalizedLinear(nn.Module):
    """A linear layer with weight normalization (Salimans & Kingma 2016): w = scale * v / ||v|| per output.

    Salimans et al. keep the scale fixed in D's hidden layers (``train_scale=False`` in their code), which bounds
    the features that feature matching matches; their output layers learn it.
    """

    def __init__(self, in_features: int, out_features: int, train_scale: bool = False):
        super().__init__()
        self.direction = nn.Parameter(torch.randn(out_features, in_features) * 0.1)  # Salimans et al.: N(0, 0.1)
        self.bias = nn.Parameter(torch.zeros(out_features))
        if train_scale:
            self.scale = nn.Parameter(torch.ones(out_features))
        else:
            self.register_buffer("scale", torch.ones(out_features))
        self.initializing = False  # set by Discriminator.initialize_from_data

    def forward(self, x: Tensor) -> Tensor:
        if self.initializing:
            self._initialize(x)
        weight = self.scale[:, None] * F.normalize(self.direction, dim=1)  # (out, in), rows of norm `scale`
        return F.linear(x, weight, self.bias)

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        """Data-dependent init: scale and bias that give each output zero mean and unit variance on ``x`` (B, in)."""
        projected = F.linear(x, F.normalize(self.direction, dim=1))  # (B, out)
        mean, std = projected.mean(0), projected.std(0) + 1e-6
        self.scale.copy_(1 / std)
        self.bias.copy_(-mean / std)


class Discriminator(nn.Module):
    """image -> noise -> [weight-normed linear (fixed scale) -> ReLU -> noise] x len(hidden_dims) -> N class logits.

    Returns (real/fake logit (B,), class_logits (B, N), features (B, hidden_dims[-1])): the features of the last
    hidden layer are what feature matching matches.
    """

    def __init__(
        self,
        num_classes: int = 10,
        hidden_dims: tuple[int, ...] = (1000, 500, 250, 250, 250),
        input_noise: float = 0.3,
        hidden_noise: float = 0.5,
        image_shape: tuple[int, int, int] = (1, 28, 28),
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), GaussianNoise(input_noise)]
        width = math.prod(image_shape)
        for index, hidden_dim in enumerate(hidden_dims):
            if index:
                layers.append(GaussianNoise(hidden_noise))
            layers += [NormalizedLinear(width, hidden_dim), nn.ReLU()]
            width = hidden_dim
        self.features = nn.Sequential(*layers)
        self.classify = nn.Sequential(
            GaussianNoise(hidden_noise), NormalizedLinear(width, num_classes, train_scale=True)
        )

    @torch.no_grad()
    def initialize_from_data(self, images: Tensor) -> None:
        """Salimans et al.'s data-dependent initialization, layer after layer on one batch of real images (B, C, H, W).

        Without it the fixed-scale hidden layers pass on signals far smaller than the noise added between them.
        The noise is on while measuring, as in their code: measured without it, the scales come out several times
        too large, the training noise is amplified layer after layer, and D's features blow up within 100 steps.
        """
        layers = [m for m in self.modules() if isinstance(m, NormalizedLinear)]
        was_training = self.training
        self.train()  # with the Gaussian noise, as in training: the noise counts in the unit variance
        for layer in layers:
            layer.initializing = True
        self(images)
        for layer in layers:
            layer.initializing = False
        self.train(was_training)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # Pixels in [0, 1] as in Salimans et al.: a mostly-zero background, to which the noise scale refers.
        features = self.features((images + 1) / 2)  # (B, C, H, W) in [-1, 1] -> (B, F)
        class_logits = self.classify(features)  # (B, N)
        # The real/fake logit with the fake class's logit implied as 0: log Z(x), D(x) = Z / (Z + 1).
        return class_logits.logsumexp(dim=1), class_logits, features  # (B,), (B, N), (B, F)


class BatchNormWithoutScale(nn.Module):
    """BatchNorm with a learned shift and no learned scale (Salimans et al.'s ``batch_norm(..., g=None)``): with a
    learned scale, feature matching drives it to 0, and G ignores z and collapses to one image."""

    def __init__(self, num_features: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(num_features, affine=False)
        self.shift = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x) + self.shift  # (B, F)


class ShiftedSoftplus(nn.Module):
    """2 softplus(x) - 1: pixels from -1 (background) up, with no ceiling whose saturation stalls G's gradient."""

    def forward(self, x: Tensor) -> Tensor:
        return 2 * F.softplus(x) - 1


OUTPUTS = {"tanh": nn.Tanh, "softplus": ShiftedSoftplus}


class Generator(nn.Module):
    """z -> [linear -> BatchNorm (shift only) -> softplus] x len(hidden_dims) -> weight-normed linear -> ``output``
    (tanh, or 2 softplus - 1), as an image."""

    def __init__(
        self,
        latent_dim: int = 100,
        hidden_dims: tuple[int, ...] = (500, 500),
        image_shape: tuple[int, int, int] = (1, 28, 28),
        output: str = "tanh",
    ):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"model.generator.output must be one of {sorted(OUTPUTS)}, got {output!r}")
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for hidden_dim in hidden_dims:
            layers += [nn.Linear(width, hidden_dim, bias=False), BatchNormWithoutScale(hidden_dim), nn.Softplus()]
            width = hidden_dim
        # Salimans et al. end with a sigmoid on [0, 1] pixels; tanh is the same curve on this framework's [-1, 1].
        layers += [NormalizedLinear(width, math.prod(self.image_shape), train_scale=True), OUTPUTS[output]()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)  # (B, latent) -> (B, C, H, W)
