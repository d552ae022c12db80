"""GAN objectives, one small class each, on the discriminator's raw logits.

Every objective has ``d_loss(real_logits, fake_logits)`` (minimized by the discriminator) and
``g_loss(fake_logits)`` (minimized by the generator). Log-sigmoid terms are written with softplus, which is
stable for large logits: ``softplus(-x) = -log(sigmoid(x))`` and ``softplus(x) = -log(1 - sigmoid(x))``.
An objective also declares what it needs beyond the logits: ``discriminator_steps`` per generator step, and a
``d_penalty`` on the discriminator (gradient penalty), so that the LightningModule stays generic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per example (Gulrajani et al. 2017)."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)  # (B, 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


class GANLoss:
    """Base objective: one discriminator step per generator step and no penalty."""

    #: The discriminator's output reads as a probability through sigmoid; objectives on raw scores say False.
    probabilistic = True

    def __init__(self, discriminator_steps: int = 1):
        if discriminator_steps < 1:
            raise ValueError(f"loss.discriminator_steps must be >= 1, got {discriminator_steps}")
        self.discriminator_steps = discriminator_steps

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def d_penalty(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """Extra discriminator term (already weighted); zero unless the objective needs one."""
        return real.new_zeros(())

    def d_output(self, logits: Tensor) -> Tensor:
        """The discriminator's output as logged for D(x) and D(G(z)): a probability where that has a meaning."""
        return torch.sigmoid(logits) if self.probabilistic else logits

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in vars(self).items())})"


class MinimaxGAN(GANLoss):
    """The original minimax game (Goodfellow et al. 2014): G minimizes log(1 - D(G(z))).

    It saturates: when D rejects the fakes, log(1 - D(G(z))) is flat and G gets little gradient.
    """

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()  # -log D(x) - log(1 - D(G(z)))

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -F.softplus(fake_logits).mean()  # log(1 - D(G(z)))


class NonSaturatingGAN(MinimaxGAN):
    """The non-saturating variant (Goodfellow et al. 2014, section 3): G maximizes log D(G(z))."""

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return F.softplus(-fake_logits).mean()  # -log D(G(z))


class LeastSquaresGAN(GANLoss):
    """LSGAN (Mao et al. 2017): D pushes real scores to b and fake scores to a; G pushes fake scores to c."""

    probabilistic = False

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0, discriminator_steps: int = 1):
        super().__init__(discriminator_steps)
        self.a, self.b, self.c = a, b, c

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 0.5 * ((real_logits - self.b).pow(2).mean() + (fake_logits - self.a).pow(2).mean())

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return 0.5 * (fake_logits - self.c).pow(2).mean()


class WassersteinGP(GANLoss):
    """WGAN-GP (Gulrajani et al. 2017): critic estimates W(real, fake); gradient penalty keeps it 1-Lipschitz."""

    probabilistic = False

    def __init__(self, gp_weight: float = 10.0, discriminator_steps: int = 5):
        super().__init__(discriminator_steps)
        self.gp_weight = gp_weight

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return fake_logits.mean() - real_logits.mean()  # -(E[D(x)] - E[D(G(z))])

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.mean()

    def d_penalty(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return self.gp_weight * gradient_penalty(discriminator, real, fake)


class Hinge(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): D margins at +-1, G raises the critic score of fakes."""

    probabilistic = False

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.mean()
