"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation between two domains A and B.

Two generators, G_AB: A -> B and G_BA: B -> A (``networks/resnet_translator.py``), and two PatchGAN
discriminators, D_A on domain A and D_B on domain B (``networks/patchgan.py``). A training batch is an
``UnpairedBatch`` (``data/digits_to_mnist.py``), and the whole objective is this family's own
(``discriminator_loss``, ``generator_loss``). The update order stays the base's: the discriminators (one
optimizer for both), then the generators (one for both); a training step is one generator update.

- Adversarial terms from the ``loss=`` group (least squares by default, as in the paper), on every patch.
- Cycle consistency: lambda_cycle * (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1), lambda_cycle = 10.
- Identity: lambda_identity * lambda_cycle * (|G_AB(b) - b|_1 + |G_BA(a) - a|_1), lambda_identity = 0.5.
- The discriminators see a history of ``pool_size`` = 50 generated images per domain (Shrivastava et al. 2017):
  half of each fake batch is swapped for older fakes once the pool is full. The pools travel in checkpoints.
- The discriminator objective is halved (the paper's "divide the objective by 2 while optimizing D").
- ``lr_decay_start``: from this generator update on, both learning rates decay linearly to 0 at
  ``trainer.max_steps`` (the paper: constant for 100 epochs, then linear to 0 over 100): a Lightning
  ``lr_scheduler`` per optimizer (``lr_schedule``), a function of the step alone, so a resumed run gets the same
  rates.

``translate(images, "ab")`` (and ``forward``) translate A -> B, ``translate(images, "ba")`` the other way; the
family's evaluation is ``ganlab.evaluation.translation``.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import Tensor, nn

from ganlab.config.bounds import Bound, check_arguments
from ganlab.data.batches import UnpairedBatch
from ganlab.evaluation.translation import Translations
from ganlab.models.gan import GAN, eval_mode

DOMAINS = ("a", "b")
NOISE_PLACEHOLDER = {"latent_dim": 1, "prior": "normal", "num_fixed_samples": 1}


class ImagePool:
    """A history of up to ``size`` generated images (one domain's), as in Zhu et al.'s implementation."""

    def __init__(self, size: int):
        self.size = size
        self.images: list[Tensor] = []  # (C, H, W) each, detached

    def query(self, images: Tensor) -> Tensor:
        """For each new image: while the pool fills, the image itself (and it joins the pool); then with p = 1/2
        a random older image (which the new one replaces in the pool), else the new image."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:  # torch's global RNG: StepSeed makes it a function of the step
                index = int(torch.randint(self.size, ()))
                out.append(self.images[index])
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        return {"images": torch.stack(self.images).cpu() if self.images else None}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.images = [] if state["images"] is None else list(state["images"].to(device).unbind(0))


class CycleGAN(GAN):
    evaluator_class = Translations
    batch_type = UnpairedBatch
    preset = "cyclegan"
    derived_arguments = tuple(NOISE_PLACEHOLDER)

    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        lambda_cycle: Annotated[float, Bound(at_least=0)] = 10.0,
        lambda_identity: Annotated[float, Bound(at_least=0)] = 0.5,  # times lambda_cycle
        pool_size: Annotated[int, Bound(at_least=0)] = 50,
        samples_per_row: Annotated[int, Bound(at_least=1)] = 8,  # sample grids: this many images a row
        **base: Any,  # GAN's arguments: lr_decay_start, augment, compile, compile_mode
    ):
        # A translator draws from no noise: the base's latent space is a (1, 1) placeholder (a checkpoint's
        # hyperparameters hold it, and get it again).
        super().__init__(
            generator=generator,
            discriminator=discriminator,
            loss=loss,
            optimizer=optimizer,
            **base | NOISE_PLACEHOLDER,
        )
        check_arguments(CycleGAN.__init__, locals(), "model.")
        self.pools = {domain: ImagePool(pool_size) for domain in DOMAINS}

    # ---- networks --------------------------------------------------------------------------------------
    def build_networks(self, generator: dict[str, Any], discriminator: dict[str, Any]) -> None:
        self.generator_ab, self.generator_ba = instantiate(generator), instantiate(generator)
        self.discriminator_a = self.instantiate_discriminator(discriminator)
        self.discriminator_b = self.instantiate_discriminator(discriminator)

    def generator_networks(self) -> list[nn.Module]:
        return [self.generator_ab, self.generator_ba]

    def discriminator_networks(self) -> list[nn.Module]:
        return [self.discriminator_a, self.discriminator_b]

    # ---- translation -----------------------------------------------------------------------------------
    def forward(self, images: Tensor) -> Tensor:
        return self.generator_ab(images)

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "ab") -> Tensor:
        """Images of the source domain (B, C, H, W) in [-1, 1], translated in eval mode: ``"ab"`` or ``"ba"``."""
        network = {"ab": self.generator_ab, "ba": self.generator_ba}[direction]
        with eval_mode(network):
            return network(images.to(self.device))

    def generate(self, *args, **kwargs) -> Tensor:
        raise TypeError(f"{type(self).__name__} draws nothing from noise: translate(images, 'ab') or (images, 'ba')")

    # ---- objectives ------------------------------------------------------------------------------------
    def discriminator_loss(self, batch: UnpairedBatch) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        real_a, real_b = batch
        with torch.no_grad():
            fake_b, fake_a = self.generator_ab(real_a), self.generator_ba(real_b)
        fake_a, fake_b = self.pools["a"].query(fake_a), self.pools["b"].query(fake_b)
        terms, penalties, real_scores, fake_scores = {}, [], [], []
        total = real_a.new_zeros(())
        for domain, discriminator, real, fake in (
            ("a", self.discriminator_a, real_a, fake_a),
            ("b", self.discriminator_b, real_b, fake_b),
        ):
            real_logits, fake_logits = discriminator(real), discriminator(fake)  # (n * patches,)
            d_loss = self.loss.d_loss(real_logits, fake_logits)
            penalty = self.penalty_terms(discriminator, real, fake)
            total = total + 0.5 * sum(penalty.values(), d_loss)
            terms[f"loss/d_{domain}"] = d_loss
            penalties.extend(penalty.values())
            real_scores.append(real_logits)
            fake_scores.append(fake_logits)
        terms["loss/d"] = 0.5 * (terms["loss/d_a"] + terms["loss/d_b"])
        if penalties:  # both domains' D penalties, when the objective has one
            terms["loss/d_penalty"] = 0.5 * (penalties[0] + penalties[1])
        return total, torch.cat(real_scores), torch.cat(fake_scores), terms

    def generator_loss(self, batch: UnpairedBatch) -> tuple[Tensor, dict[str, Tensor]]:
        real_a, real_b = batch
        fake_b, fake_a = self.generator_ab(real_a), self.generator_ba(real_b)
        adversarial_ab = self.loss.g_loss(self.discriminator_b(fake_b))
        adversarial_ba = self.loss.g_loss(self.discriminator_a(fake_a))
        cycle = F.l1_loss(self.generator_ba(fake_b), real_a) + F.l1_loss(self.generator_ab(fake_a), real_b)
        terms = {
            "loss/g": adversarial_ab + adversarial_ba,
            "loss/g_ab": adversarial_ab,
            "loss/g_ba": adversarial_ba,
            "loss/cycle": cycle,
        }
        total = terms["loss/g"] + self.hparams.lambda_cycle * cycle
        if self.hparams.lambda_identity > 0:
            identity = F.l1_loss(self.generator_ab(real_b), real_b) + F.l1_loss(self.generator_ba(real_a), real_a)
            total = total + self.hparams.lambda_identity * self.hparams.lambda_cycle * identity
            terms["loss/identity"] = identity
        return total, terms

    # ---- validation and test: D's verdict on real images of each domain --------------------------------
    def score_real(self, batch: tuple[Tensor, ...], stage: str) -> None:
        a, _, b, _ = batch  # (A images, A labels, B images, B labels); one side is empty once its split is done
        for name, discriminator, images in (("D_A(x)", self.discriminator_a, a), ("D_B(x)", self.discriminator_b, b)):
            if len(images):
                self.log(
                    f"{stage}/{name}",
                    self.loss.d_output(discriminator(images)).mean(),
                    sync_dist=True,
                    batch_size=len(images),
                )

    # ---- checkpoints: the image pools ------------------------------------------------------------------
    # Under DDP each rank keeps its own pools (its own fakes). Lightning builds the checkpoint on every rank and
    # writes rank 0's, so the pools are gathered into it: one stack per rank, and each rank takes its own back.
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        pools = {domain: pool.state_dict() for domain, pool in self.pools.items()}
        if self.trainer.world_size > 1:
            for state in pools.values():
                if state["images"] is not None:  # every rank fills its pools at the same rate: same shapes
                    state["per_rank"] = self.all_gather(state["images"].to(self.device)).cpu()
        checkpoint["image_pools"] = pools

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self._trainer else (0, 1)
        for domain, state in checkpoint.get("image_pools", {}).items():
            per_rank = state.get("per_rank")
            if per_rank is not None and len(per_rank) == world_size:
                state = {"images": per_rank[rank]}  # this rank's own history
            self.pools[domain].load_state_dict(state, self.device)  # else rank 0's (another world size)
