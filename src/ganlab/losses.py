"""GAN objectives, one small class each, on the discriminator's raw logits.

Every objective has ``d_loss(real_logits, fake_logits)`` (minimized by the discriminator) and
``g_loss(fake_logits)`` (minimized by the generator); a ``relativistic`` one scores each fake against the real
image it is paired with in both, ``g_loss(fake_logits, real_logits)``. Log-sigmoid terms are written with
softplus, which is stable for large logits: ``softplus(-x) = -log(sigmoid(x))`` and
``softplus(x) = -log(1 - sigmoid(x))``. An objective also declares what it needs beyond the logits, so that the
LightningModule stays generic: ``discriminator_steps`` per generator step, a ``d_penalty`` on the discriminator
(gradient penalty; any objective takes the zero-centred R1 on real and R2 on fake images with ``r1_gamma``,
``r2_gamma`` > 0, and LeCam's regularization of D's scores with ``lecam_weight`` > 0), a
``constrain_discriminator`` applied after each discriminator update (weight clipping), a state that a resumed run
goes on from (BEGAN's k_t, R1's update count, LeCam's anchors, through ``state_dict``), and ``metrics`` to log as
curves (the critic's Wasserstein estimate, BEGAN's convergence measure).
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.config.bounds import Bound, check_arguments
from ganlab.networks.stabilizers import couples_examples


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per example (Gulrajani et al. 2017).

    Under autocast (``trainer.precision=16-mixed``) the inner gradient would be taken in half precision and
    unscaled (the grad scaler only scales the outer loss), so small input gradients underflow to zero: this pass
    of D, its input gradient and the penalty run in float32 with autocast off. The outer backward through it is
    then float32 as well.
    """
    device_type = real.device.type
    autocast = torch.is_autocast_enabled(device_type)
    with torch.autocast(device_type=device_type, enabled=False):
        if autocast:
            real, fake = real.float(), fake.float()
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)  # (B, 1, 1, 1)
        x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
        scores = discriminator(x_hat)
        (grad,) = torch.autograd.grad(scores.float().sum(), x_hat, create_graph=True)
        return (grad.flatten(1).float().norm(2, dim=1) - 1).pow(2).mean()


def zero_centred_penalty(discriminator: nn.Module, images: Tensor) -> Tensor:
    """E[||grad_x D(x)||_2^2] over ``images``, unweighted: R1 on real images (Mescheder et al. 2018), R2 on fakes.

    R1 pushes D's gradient to zero on the data, where a perfect G would put its samples, which damps the
    oscillations around the equilibrium; R2 does the same on G's samples (R3GAN: Huang et al. 2024 need both
    for their relativistic loss to converge locally). The caller weighs it by gamma / 2.
    """
    x = images.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(x).sum(), x, create_graph=True)  # (B, C, H, W)
    return grad.flatten(1).pow(2).sum(1).mean()


class GANLoss:
    """Base objective: one discriminator step per generator step and no penalty."""

    #: The discriminator's output reads as a probability through sigmoid; objectives on raw scores say False.
    probabilistic = True
    #: What the discriminator's score is: a "logit", or a "reconstruction_error" (BEGAN's autoencoder).
    score = "logit"

    #: True when ``d_penalty`` differentiates D per example (WGAN-GP): BatchNorm in D would mix the examples.
    per_example_penalty = False

    #: True when G's loss needs D's scores of the real images its fakes are paired with: ``g_loss(fake, real)``.
    relativistic = False

    #: The score where D is undecided between real and fake: sign(D(x) - it) is ADA's overfitting signal
    #: (``model.augment_target``). None where scores have no fixed boundary (a critic, a relativistic pair).
    decision_boundary: float | None = 0.0

    def __init__(
        self,
        discriminator_steps: Annotated[int, Bound(at_least=1)] = 1,
        r1_gamma: Annotated[
            float, Bound(at_least=0)
        ] = 0.0,  # zero-centred R1 on real images, gamma / 2 E||grad D(x)||^2
        r1_every: Annotated[int, Bound(at_least=1)] = 1,  # lazy R1 and R2: every k-th D update, weighted k times
        r2_gamma: Annotated[
            float, Bound(at_least=0)
        ] = 0.0,  # zero-centred R2 on fake images, gamma / 2 E||grad D(G(z))||^2
        lecam_weight: Annotated[
            float, Bound(at_least=0)
        ] = 0.0,  # LeCam (Tseng et al. 2021): D's scores held near the moving average of the other side's
        lecam_decay: Annotated[float, Bound(at_least=0, below=1)] = 0.99,  # that moving average's decay per D update
    ):
        check_arguments(GANLoss.__init__, locals(), "loss.")
        self.discriminator_steps = discriminator_steps
        # R1 and R2 (0: off), computed every r1_every-th discriminator update and then weighted r1_every times as
        # much (lazy regularization, Karras et al. 2020): the same strength at a fraction of the cost.
        self.r1_gamma, self.r2_gamma, self.r1_every = r1_gamma, r2_gamma, r1_every
        self.r1_updates = 0  # discriminator updates seen, for r1_every; checkpointed through state_dict
        self.lecam_weight, self.lecam_decay = lecam_weight, lecam_decay
        self.lecam_anchors: Tensor | None = None  # (2,): moving averages of D's mean real and mean fake score

    @property
    def zero_centred(self) -> bool:
        """Whether R1 or R2 is on."""
        return self.r1_gamma > 0 or self.r2_gamma > 0

    @property
    def penalizes_gradients(self) -> bool:
        """Whether D's update differentiates D's own input gradient (R1, R2, WGAN-GP): a double backward."""
        return self.per_example_penalty or self.zero_centred

    def check_discriminator(self, discriminator: nn.Module) -> None:
        """Refuse a discriminator this objective cannot train correctly (called once, when the model is built)."""
        if self.penalizes_gradients and couples_examples(discriminator):
            penalty = (
                "R1/R2 (loss.r1_gamma, loss.r2_gamma > 0)"
                if self.zero_centred
                else f"{type(self).__name__}'s gradient penalty"
            )
            raise ValueError(
                f"{penalty} needs each D(x_i) to depend on x_i alone, but the discriminator has BatchNorm or a "
                f"minibatch statistic or packs images, which mixes the examples of a batch: set "
                f"model.discriminator.batchnorm=false, minibatch_std=0 and packing=1 (spectral_norm=true is the "
                f"per-example alternative)"
            )

    def zero_centred_term(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """gamma / 2 * (R1 + R2) on every r1_every-th discriminator update (times r1_every), else zero."""
        if not self.zero_centred:
            return real.new_zeros(())
        self.r1_updates += 1
        if (self.r1_updates - 1) % self.r1_every:
            return real.new_zeros(())
        terms = [(self.r1_gamma, real), (self.r2_gamma, fake)]
        weighted = [gamma * zero_centred_penalty(discriminator, images) for gamma, images in terms if gamma > 0]
        return 0.5 * self.r1_every * sum(weighted[1:], weighted[0])

    def lecam_term(self, real_scores: Tensor, fake_scores: Tensor, means: Tensor) -> Tensor:
        """LeCam's regularization, weighted (Tseng et al. 2021): lecam_weight * (E[relu(D(x) - a_fake)^2] +
        E[relu(a_real - D(G(z)))^2]), where a_real and a_fake are moving averages of D's mean real and fake scores,
        first moved by ``means`` (this update's (2,) means, the same on every DDP rank).

        It keeps D's scores of real images from running away above what it gave the fakes lately, and the
        reverse: with few training images D memorizes them and pushes their scores apart. With the term, the game
        minimizes a LeCam (triangular) divergence, which the paper finds more robust under limited data."""
        means = means.detach().float()  # float32 anchors under autocast too
        anchors = self.lecam_anchors
        if anchors is None:  # the first update anchors at its own means
            anchors = means
        else:  # decay * anchors + (1 - decay) * means
            anchors = torch.lerp(means, anchors.to(means.device), self.lecam_decay)
        self.lecam_anchors = anchors
        real_anchor, fake_anchor = anchors[0], anchors[1]
        pull = F.relu(real_scores - fake_anchor).pow(2).mean() + F.relu(real_anchor - fake_scores).pow(2).mean()
        return self.lecam_weight * pull

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def d_penalty(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """Extra discriminator term (already weighted): R1 and R2 when their gammas are > 0, else zero; once per
        D update."""
        return self.zero_centred_term(discriminator, real, fake)

    def constrain_discriminator(self, discriminator: nn.Module) -> None:
        """Called after every discriminator update (WGAN's weight clipping); nothing by default."""

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"r1_updates": self.r1_updates} if self.zero_centred else {}
        if self.lecam_anchors is not None:
            state["lecam_anchors"] = self.lecam_anchors.tolist()  # a host sync, at checkpoints only
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, torch.tensor(value) if name == "lecam_anchors" else value)

    def metrics(self, real_scores: Tensor, fake_scores: Tensor) -> dict[str, Tensor]:
        """Curves worth logging beyond the losses, from one discriminator update's (B,) scores."""
        return {}

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

    def __init__(
        self,
        a: float = 0.0,  # D's target for fakes
        b: float = 1.0,  # D's target for real images
        c: float = 1.0,  # G's target for its fakes
        **base: Any,  # GANLoss's arguments
    ):
        super().__init__(**base)
        self.a, self.b, self.c = a, b, c
        self.decision_boundary = (a + b) / 2  # halfway between the fake and real targets

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 0.5 * ((real_logits - self.b).pow(2).mean() + (fake_logits - self.a).pow(2).mean())

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return 0.5 * (fake_logits - self.c).pow(2).mean()


class Wasserstein(GANLoss):
    """The critic's objective of WGAN: E[D(x)] - E[D(G(z))] estimates W(real, fake) when D is 1-Lipschitz
    (up to a constant); subclasses say how D is kept Lipschitz."""

    probabilistic = False
    decision_boundary = None  # the critic's scores shift freely: only differences carry meaning

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return fake_logits.mean() - real_logits.mean()  # -(E[D(x)] - E[D(G(z))])

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.mean()

    def metrics(self, real_scores: Tensor, fake_scores: Tensor) -> dict[str, Tensor]:
        # The curve the WGAN paper plots: it falls as samples improve (Arjovsky et al. 2017, figure 3).
        return {"critic/wasserstein_estimate": real_scores.mean() - fake_scores.mean()}


class WassersteinClip(Wasserstein):
    """The original WGAN (Arjovsky et al. 2017, algorithm 1): after every critic update, every critic weight is
    clipped to [-c, c], which bounds its Lipschitz constant. The paper's defaults: c = 0.01, 5 critic updates
    per generator update, and RMSprop with lr 5e-5 (optimizer=rmsprop; momentum made training unstable)."""

    def __init__(
        self,
        clip_value: Annotated[float, Bound(above=0)] = 0.01,
        discriminator_steps: Annotated[int, Bound(at_least=1)] = 5,
        **base: Any,  # GANLoss's arguments
    ):
        super().__init__(discriminator_steps=discriminator_steps, **base)
        check_arguments(WassersteinClip.__init__, locals(), "loss.")
        self.clip_value = clip_value

    @torch.no_grad()
    def constrain_discriminator(self, discriminator: nn.Module) -> None:
        for parameter in discriminator.parameters():
            parameter.clamp_(-self.clip_value, self.clip_value)


class WassersteinGP(Wasserstein):
    """WGAN-GP (Gulrajani et al. 2017): critic estimates W(real, fake); gradient penalty keeps it 1-Lipschitz."""

    per_example_penalty = True

    def __init__(
        self,
        gp_weight: Annotated[float, Bound(at_least=0)] = 10.0,
        discriminator_steps: Annotated[int, Bound(at_least=1)] = 5,
        **base: Any,  # GANLoss's arguments
    ):
        super().__init__(discriminator_steps=discriminator_steps, **base)
        check_arguments(WassersteinGP.__init__, locals(), "loss.")
        self.gp_weight = gp_weight

    def d_penalty(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return self.gp_weight * gradient_penalty(discriminator, real, fake) + super().d_penalty(
            discriminator, real, fake
        )


class Hinge(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): D margins at +-1, G raises the critic score of fakes."""

    probabilistic = False

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.mean()


class RelativisticPairing(GANLoss):
    """The relativistic pairing GAN (RpGAN: Jolicoeur-Martineau 2019; Sun et al. 2020) with R1 and R2, the
    objective of R3GAN (Huang et al. 2024). Each fake is scored against a real image, paired by position in the
    batch: D minimizes softplus(D(G(z)) - D(x)), G minimizes softplus(D(x) - D(G(z))). Where the classic loss
    lets D split real from fake by one boundary that G's samples can all cross at one mode, the paired one asks
    every fake to beat a real image, which Sun et al. show removes the mode-dropping basins of the landscape;
    R1 on real and R2 on fake images (both at gamma) give it local convergence (R3GAN, section 2)."""

    probabilistic = False
    relativistic = True
    decision_boundary = None  # only D(x) - D(G(z)) carries meaning

    def __init__(
        self,
        r1_gamma: Annotated[float, Bound(at_least=0)] = 0.1,  # R3GAN's gamma; docs/variants.md measures it here
        r2_gamma: Annotated[float, Bound(at_least=0)] = 0.1,  # as r1_gamma: R3GAN weighs R1 and R2 alike
        **base: Any,  # GANLoss's arguments
    ):
        super().__init__(r1_gamma=r1_gamma, r2_gamma=r2_gamma, **base)

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.softplus(fake_logits - real_logits).mean()  # -log sigmoid(D(x) - D(G(z)))

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor) -> Tensor:
        return F.softplus(real_logits - fake_logits).mean()  # -log sigmoid(D(G(z)) - D(x))

    def metrics(self, real_scores: Tensor, fake_scores: Tensor) -> dict[str, Tensor]:
        # How far D ranks the real image of a pair above its fake: P(real > fake) = sigmoid of it.
        return {"critic/real_minus_fake": (real_scores - fake_scores).mean()}


class BoundaryEquilibrium(GANLoss):
    """BEGAN (Berthelot et al. 2017). The discriminator is an autoencoder and its score is the per-example L1
    reconstruction error L(v) = mean |v - D(v)|. D minimizes L(x) - k_t L(G(z)), G minimizes L(G(z)), and the
    proportional controller k_{t+1} = clamp(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1) holds the equilibrium
    E[L(G(z))] = gamma E[L(x)]; gamma (diversity ratio) trades sample diversity for quality.
    """

    probabilistic = False
    score = "reconstruction_error"
    decision_boundary = None  # an error to keep in equilibrium, not a verdict

    def __init__(
        self,
        gamma: Annotated[
            float, Bound(above=0, at_most=1)
        ] = 0.75,  # E[L(G(z))] / E[L(x)] held; lower: sharper, less diverse
        lambda_k: Annotated[float, Bound(at_least=0)] = 0.001,  # k_t's learning rate
        k: Annotated[float, Bound(at_least=0, at_most=1)] = 0.0,  # k_0
        **base: Any,  # GANLoss's arguments
    ):
        super().__init__(**base)
        check_arguments(BoundaryEquilibrium.__init__, locals(), "loss.")
        self.gamma, self.lambda_k, self.k = gamma, lambda_k, k

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return real_logits.mean() - self.k * fake_logits.mean()  # L(x) - k_t L(G(z))

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return fake_logits.mean()  # L(G(z))

    def update_state(self, real_score: Tensor, fake_score: Tensor) -> None:
        # On the scores' device, with no host sync: k_t becomes a 0-d tensor at the first update. Read it as a
        # number (a sync) only when needed: state_dict, at checkpoints.
        k = torch.as_tensor(self.k, dtype=real_score.dtype, device=real_score.device)
        self.k = (k + self.lambda_k * (self.gamma * real_score.detach() - fake_score.detach())).clamp(0.0, 1.0)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "k": float(self.k)}

    def metrics(self, real_scores: Tensor, fake_scores: Tensor) -> dict[str, Tensor]:
        real, fake = real_scores.mean(), fake_scores.mean()
        return {
            # M_global = L(x) + |gamma L(x) - L(G(z))|: falls as training converges (paper, section 3.4.1).
            "began/convergence": real + (self.gamma * real - fake).abs(),
            "began/k": torch.as_tensor(self.k, dtype=real.dtype, device=real.device).detach().reshape(()),
        }
