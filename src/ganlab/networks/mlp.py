"""The vanilla fully connected GAN of the course material: one hidden layer in G and in D."""

from __future__ import annotations

import math

from torch import Tensor, nn


class Generator(nn.Module):
    """z -> hidden -> BatchNorm -> ReLU -> C*H*W -> tanh, reshaped to an image."""

    def __init__(self, latent_dim: int = 100, hidden_dim: int = 256, image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),  # default eps; reference code's BatchNorm1d(n, 0.8) set eps=0.8 by mistake
            nn.ReLU(),
            nn.Linear(hidden_dim, math.prod(self.image_shape)),
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)  # (B, latent) -> (B, C, H, W)


class Discriminator(nn.Module):
    """image -> hidden -> LeakyReLU -> one raw logit. No BatchNorm on the output: it would erase the signal."""

    def __init__(self, hidden_dim: int = 256, image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(image_shape), hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, 1),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images).squeeze(1)  # (B, C, H, W) -> (B,)
