"""InfoGAN (Chen et al. 2016): G's latent is noise plus structured codes c (a K-way categorical code and M
continuous codes ~ U[-1, 1]), and a head Q on D's features recovers c from G(z, c). Maximizing the variational
lower bound of the mutual information I(c; G(z, c)) makes the codes mean something: on MNIST the categorical code
takes the digit class without a label (``ganlab.evaluation.codes`` measures how well).

    L_I = categorical_weight * CE(Q_cat(G(z, c)), c_cat) + continuous_weight * NLL(c_cont | Q_cont(G(z, c)))
    D:  loss.d_loss(real, fake) [+ L_I]     G:  loss.g_loss(fake) + L_I

Q is a network of its own with its own optimizer (``q``), stepping in the phase ``q_phase`` names: with D (the
paper's: L_I joins both objectives and also trains D's shared trunk) or with G (L_I in G's objective only; D's
trunk learns from the adversarial loss alone). G's input (``latent_dim`` wide) is
[noise (latent_dim - K - M), one-hot c_cat (K), c_cont (M)].
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import Tensor
from torch.nn.utils import parametrize

from ganlab.config.bounds import Bound, check_arguments
from ganlab.data.batches import LabelledBatch
from ganlab.evaluation.codes import Codes
from ganlab.models.gan import GAN, parameters

CONTINUOUS_LOSSES = ("gaussian", "mse")
Q_PHASES = ("discriminator", "generator")


class InfoGAN(GAN):
    evaluator_class = Codes
    preset = "infogan"
    derived_arguments = ("num_fixed_samples",)  # the code grid's shape

    def __init__(
        self,
        q_head: dict[str, Any],
        latent_dim: Annotated[int, Bound(at_least=2)] = 74,  # G's whole input: 62 noise + K + M, the paper's
        num_categories: Annotated[int, Bound(at_least=2)] = 10,
        num_continuous: Annotated[int, Bound(at_least=0)] = 2,
        categorical_weight: Annotated[float, Bound(at_least=0)] = 1.0,  # lambda of the categorical code (paper: 1)
        continuous_weight: Annotated[float, Bound(at_least=0)] = 0.1,  # lambda of the continuous codes
        continuous_loss: str = "gaussian",  # gaussian: NLL under Q's mean and log-std; mse: (c - mean)^2
        q_phase: str = "discriminator",  # Q steps with D (L_I in both objectives) or with G (L_I in G's only)
        grid_columns: Annotated[int, Bound(at_least=2)] = 10,  # the grid: a row per code value, a sweep of code 0
        **base: Any,  # GAN's arguments (prior: the noise part's)
    ):
        if continuous_loss not in CONTINUOUS_LOSSES:
            raise ValueError(f"model.continuous_loss must be one of {CONTINUOUS_LOSSES}, got {continuous_loss!r}")
        if q_phase not in Q_PHASES:
            raise ValueError(f"model.q_phase must be one of {Q_PHASES}, got {q_phase!r}")
        if latent_dim <= num_categories + num_continuous:
            raise ValueError(
                f"model.latent_dim={latent_dim} is G's whole input and must exceed num_categories + num_continuous "
                f"({num_categories} + {num_continuous}): the rest is noise"
            )
        self.noise_dim = latent_dim - num_categories - num_continuous
        super().__init__(latent_dim=latent_dim, **base | {"num_fixed_samples": num_categories * grid_columns})
        check_arguments(InfoGAN.__init__, locals(), "model.")
        # The grid: row i is code value i, the columns sweep continuous code 0; one noise vector throughout.
        self.fixed_noise = self.code_grid(grid_columns, self.sample_noise(1))

    # ---- networks and optimizers -----------------------------------------------------------------------
    def build_networks(self, generator: dict[str, Any], discriminator: dict[str, Any]) -> None:
        super().build_networks(generator, discriminator)
        self.q_head = instantiate(
            self.hparams.q_head,
            feature_dim=self.discriminator.feature_dim,
            num_categories=self.hparams.num_categories,
            num_continuous=self.hparams.num_continuous,
        )

    @property
    def phases(self) -> dict[str, tuple[str, ...]]:
        with_d = self.hparams.q_phase == "discriminator"
        return {
            "discriminator": ("discriminator", "q") if with_d else ("discriminator",),
            "generator": ("generator",) if with_d else ("generator", "q"),
        }

    def parameter_groups(self) -> dict[str, list[dict[str, Any]]]:
        return super().parameter_groups() | {"q": [{"params": parameters([self.q_head])}]}

    def optimizer_settings(self, name: str) -> dict[str, Any]:
        """Q takes the settings of the optimizer it steps beside."""
        return super().optimizer_settings(self.hparams.q_phase if name == "q" else name)

    # ---- the latent: noise and codes ---------------------------------------------------------------------
    def sample_noise(self, num: int) -> Tensor:
        if self.hparams.prior == "normal":
            return torch.randn(num, self.noise_dim, device=self.device)
        return torch.rand(num, self.noise_dim, device=self.device) * 2 - 1

    def latent(self, categories: Tensor, continuous: Tensor, noise: Tensor) -> Tensor:
        """G's input (B, latent_dim) = [noise (B, noise_dim), one_hot(categories) (B, K), continuous (B, M)]."""
        one_hot = F.one_hot(categories.long(), self.hparams.num_categories).to(noise.dtype)
        return torch.cat([noise, one_hot.to(noise.device), continuous.to(noise)], dim=1)

    def code_latent(self, categories: Tensor) -> Tensor:
        """Latents for the given code values (B,), with fresh noise and continuous codes ~ U[-1, 1]."""
        continuous = torch.rand(len(categories), self.hparams.num_continuous, device=self.device) * 2 - 1
        return self.latent(categories.to(self.device), continuous, self.sample_noise(len(categories)))

    def sample_latent(self, num: int) -> Tensor:
        """Noise from ``prior``, c_cat uniform over the K values, c_cont ~ U[-1, 1]."""
        return self.code_latent(torch.randint(self.hparams.num_categories, (num,), device=self.device))

    def split_latent(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(noise (B, noise_dim), categories (B,), continuous (B, M)) of G's input."""
        noise, one_hot, continuous = z.split(
            [self.noise_dim, self.hparams.num_categories, self.hparams.num_continuous], dim=1
        )
        return noise, one_hot.argmax(1), continuous

    def code_grid(self, columns: int, noise: Tensor, code: int = 0) -> Tensor:
        """Latents of a (K rows, ``columns``) grid: row i has c_cat = i, the columns sweep continuous code ``code``
        over [-1, 1], the other continuous codes 0; one noise vector (1, noise_dim) throughout."""
        k, m = self.hparams.num_categories, self.hparams.num_continuous
        categories = torch.arange(k, device=self.device).repeat_interleave(columns)  # (K * columns,)
        continuous = torch.zeros(k * columns, m, device=self.device)
        if m:
            continuous[:, code] = torch.linspace(-1, 1, columns, device=self.device).repeat(k)
        return self.latent(categories, continuous, noise.to(self.device).expand(k * columns, -1))

    # ---- the objective ---------------------------------------------------------------------------------
    def information_terms(self, features: Tensor, z: Tensor, prefix: str) -> dict[str, Tensor]:
        """The weighted lower bound's parts (to minimize) for fakes drawn from ``z``, read by Q from D's features."""
        _, categories, continuous = self.split_latent(z)
        logits, mean, log_std = self.q_head(features)
        terms = {f"loss/{prefix}_info_cat": self.hparams.categorical_weight * F.cross_entropy(logits, categories)}
        if self.hparams.num_continuous:
            if self.hparams.continuous_loss == "gaussian":  # -log N(c; mean, std^2), per code, averaged
                nll = log_std + 0.5 * ((continuous - mean) / log_std.exp()) ** 2 + 0.5 * math.log(2 * math.pi)
            else:
                nll = (continuous - mean) ** 2
            terms[f"loss/{prefix}_info_cont"] = self.hparams.continuous_weight * nll.mean()
        return terms

    def discriminator_loss(self, batch: LabelledBatch) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        real = batch.images
        z = self.sample_latent(len(real))
        with torch.no_grad():
            fake = self(z)
        with parametrize.cached():  # a spectral-norm D: each weight normalized once for both forwards
            real_scores, _ = self.discriminator(real)
            fake_scores, fake_features = self.discriminator(fake)
        d_loss = self.loss.d_loss(real_scores, fake_scores)
        terms = {"loss/d": d_loss} | self.penalty_terms(lambda images: self.discriminator(images)[0], real, fake)
        if self.hparams.q_phase == "discriminator":
            terms |= self.information_terms(fake_features, z, "d")
        return sum(terms.values()), real_scores, fake_scores, terms

    def generator_loss(self, batch: LabelledBatch) -> tuple[Tensor, dict[str, Tensor]]:
        z = self.sample_latent(len(batch.images))
        fake_scores, fake_features = self.discriminator(self(z))
        g_loss = self.loss.g_loss(fake_scores)
        terms = {"loss/g": g_loss, **self.information_terms(fake_features, z, "g")}
        return sum(terms.values()), terms

    def discriminate(self, images: Tensor, labels: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        scores, _ = self.discriminator(images)  # D's verdict on held-out real images (validation)
        return scores, ()
