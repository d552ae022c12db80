"""StackGAN (Zhang et al. 2017): text to image in two stages, on captioned MNIST or Fashion-MNIST.

- A caption encoder (``networks/text_encoder.py``) trained with the discriminators: the matching-aware objective
  makes its embedding tell a caption that fits an image from one that does not.
- Conditioning augmentation per stage: the embedding gives mu and sigma, the condition is drawn from
  N(mu, sigma^2), and ``kl_weight`` x KL(N(mu, sigma^2) || N(0, I)) joins G's loss.
- Stage I: noise and condition to 14x14; stage II: the (detached) stage-I image and its own condition to 28x28
  (``networks/stacked.py``). Both stages train in every step, each against its own discriminator.
- Matching-aware discriminators (Reed et al. 2016), one per stage: real images with their caption are real;
  generated images, and real images with a mismatched caption (the next image's in the batch), are fake:
  L_D = L(real, fake) / 2 + L(real, mismatched) / 2 for the ``loss=`` group's L (real weighted 1, each
  negative 1/2, as in the paper).
- Beyond the paper, for short CPU runs: an auxiliary head on each discriminator predicts the measured attributes
  (class, thickness, slant, size) of real images, and G is asked to make the attributes its caption mentions
  (ACGAN's terms, ``attribute_weight``); a head on the caption embedding predicts the attributes the caption
  mentions (``caption_attribute_weight``), so the encoder learns the words from the first step.
- Mode seeking (MSGAN: Mao et al. 2019, shown on StackGAN++ among others), ``mode_seeking_weight``: a second
  draw of noise for the same captions, and G's loss grows as the two draws' images (both stages) come out
  alike for noise apart: 1 / (E|G(z1, c) - G(z2, c)| / E|z1 - z2| + eps). Conditional GANs learn to ignore z;
  this term is against it. Off at 0 (no second draw).

A batch is a ``CaptionedBatch`` (``data/captioned_digits.py``), the whole objective is this family's own, and
the update order stays the base's: the discriminators and the caption encoder (one optimizer, the encoder in a
parameter group of its own), then both generator stages (the other). ``generate`` draws stage-II images for
captions (random ones when none are given); ``generate_stages`` gives both stages. The family's evaluation is
``ganlab.evaluation.captions``.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import Tensor, nn

from ganlab.config.bounds import Bound, check_arguments
from ganlab.data.batches import CaptionedBatch
from ganlab.data.captions import CaptionGrammar, unpack
from ganlab.evaluation.captions import Captions
from ganlab.models.gan import GAN, eval_mode, parameters
from ganlab.networks.stacked import ATTRIBUTE_CLASSES


def attribute_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy of each attribute head, summed: logits (B, 18), targets (B, 4) with -1 where not asked."""
    losses = [
        F.cross_entropy(head, target, ignore_index=-1) if (target >= 0).any() else head.sum() * 0
        for head, target in zip(logits.split(ATTRIBUTE_CLASSES, dim=1), targets.unbind(1))
    ]
    return torch.stack(losses).sum()


class StackGAN(GAN):
    evaluator_class = Captions
    batch_type = CaptionedBatch
    preset = "stackgan"
    derived_arguments = ("num_fixed_samples",)  # the sample grid's shape

    def __init__(
        self,
        text_encoder: dict[str, Any],
        caption_classes: str | None = "mnist",  # which class words captions use: mnist or fashion_mnist
        held_out: list[str] | None = None,  # attribute-class pairs never said in training, e.g. ["thick 1"]
        vocabulary: list[str] | None = None,  # filled from the grammar; a checkpoint keeps it
        kl_weight: Annotated[float, Bound(at_least=0)] = 0.02,  # conditioning augmentation's KL term in G's loss
        attribute_weight: Annotated[float, Bound(at_least=0)] = 1.0,  # attribute heads on both Ds (0: the paper's D)
        caption_attribute_weight: Annotated[float, Bound(at_least=0)] = 1.0,  # a head on the caption embedding
        mode_seeking_weight: Annotated[float, Bound(at_least=0)] = 0.0,  # MSGAN's term in G's loss (0: off)
        text_lr_scale: Annotated[float, Bound(above=0)] = 10.0,  # the caption encoder's lr, times the Ds'
        latent_dim: Annotated[int, Bound(at_least=1)] = 64,
        num_fixed_captions: Annotated[int, Bound(at_least=1)] = 10,  # sample grids: a row per caption
        samples_per_caption: Annotated[int, Bound(at_least=1)] = 4,  # sample grids: stage-I then stage-II images
        **base: Any,  # GAN's arguments
    ):
        if caption_classes is None:  # model=stackgan on data without captions (conf/model/stackgan.yaml)
            raise ValueError(
                f"{type(self).__name__} draws from captions, and the data has none: train it with "
                f"experiment={self.preset} (data=captioned_mnist or data=captioned_fashion_mnist)"
            )
        super().__init__(latent_dim=latent_dim, **base | {"num_fixed_samples": samples_per_caption})
        check_arguments(StackGAN.__init__, locals(), "model.")
        if vocabulary is not None and list(vocabulary) != self.grammar.vocabulary:
            raise ValueError(
                "this checkpoint's vocabulary differs from the caption grammar's (data/captions.py changed since)"
            )
        self.hparams["vocabulary"] = self.grammar.vocabulary
        generator_rng = torch.Generator().manual_seed(0)
        attributes = self.grammar.random_attributes(num_fixed_captions, generator_rng)
        attributes[:, 0] = torch.arange(num_fixed_captions) % self.grammar.num_classes
        self.register_buffer("fixed_captions", self.grammar.captions_for(attributes, generator_rng))

    # ---- networks --------------------------------------------------------------------------------------
    def build_networks(self, generator: dict[str, Any], discriminator: dict[str, Any]) -> None:
        self.grammar = CaptionGrammar(self.hparams.caption_classes, self.hparams.held_out or [])
        self.text_encoder = instantiate(self.hparams.text_encoder, vocabulary_size=len(self.grammar.vocabulary))
        self.caption_head = nn.Linear(self.text_encoder.text_dim, sum(ATTRIBUTE_CLASSES))
        self.generator = instantiate(generator)
        self.discriminator_1 = self.instantiate_discriminator(discriminator, image_size=14)
        self.discriminator_2 = self.instantiate_discriminator(discriminator, image_size=28)

    def generator_networks(self) -> list[nn.Module]:
        return [self.generator]

    def discriminator_networks(self) -> list[nn.Module]:
        """The caption encoder learns with the discriminators: matching captions to images is their task."""
        return [self.text_encoder, self.caption_head, self.discriminator_1, self.discriminator_2]

    def parameter_groups(self) -> dict[str, list[dict[str, Any]]]:
        """The caption encoder (and its head) in a group of its own in D's optimizer, at ``text_lr_scale`` times
        D's learning rate: the paper's encoder comes pretrained, this one must learn the words before G can follow
        them (at Adam's 2e-4, word embeddings of scale 1 barely move in a short run)."""
        text = parameters([self.text_encoder, self.caption_head])
        return {
            "discriminator": [
                {"params": parameters(self.critic_networks())},
                {"params": text, "lr_scale": self.hparams.text_lr_scale},
            ],
            "generator": [{"params": parameters(self.generator_networks())}],
        }

    def critic_networks(self) -> list[nn.Module]:
        """WGAN's clipping and the loss's checks apply to the two discriminators, not to the caption encoder."""
        return [self.discriminator_1, self.discriminator_2]

    # ---- drawing ---------------------------------------------------------------------------------------
    def encode(self, captions: Tensor) -> Tensor:
        """Packed captions (B, W) -> embeddings (B, text_dim)."""
        unpacked = unpack(captions.to(self.device))
        return self.text_encoder(unpacked.tokens, unpacked.lengths)

    def random_captions(self, num: int) -> Tensor:
        """``num`` packed captions of uniformly drawn attributes (no held-out pair), from torch's global RNG."""
        generator = torch.Generator().manual_seed(int(torch.randint(2**31, ())))
        attributes = self.grammar.random_attributes(num, generator)
        return self.grammar.captions_for(attributes, generator).to(self.device)

    def generator_inputs(self, num: int, labels: Tensor | None = None, z: Tensor | None = None) -> tuple[Tensor, ...]:
        """(z, packed captions): the real chunk's captions, or random ones."""
        z = self.sample_latent(num) if z is None else z.to(self.device)
        return z, self.random_captions(len(z)) if labels is None else labels.to(self.device)

    def stages(self, z: Tensor, captions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(stage-I images (B, C, 14, 14), stage-II images (B, C, 28, 28), KL term)."""
        return self.generator(z, self.encode(captions))

    def forward(self, z: Tensor, captions: Tensor) -> Tensor:
        return self.stages(z, captions)[1]

    @torch.no_grad()
    def generate_stages(self, z: Tensor | None = None, captions: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Both stages in eval mode for ``captions`` (B, W) packed (random ones if None) and ``z`` (random if None)."""
        num = len(captions) if captions is not None else len(z)
        z, captions = self.generator_inputs(num, captions, z)
        with eval_mode(self.generator, self.text_encoder):
            low, high, _ = self.stages(z, captions)
        return low, high

    @torch.no_grad()
    def generate(self, num: int | None = None, z: Tensor | None = None, captions: Tensor | None = None) -> Tensor:
        """Stage-II images for packed ``captions`` (B, W); random captions for ``num`` images or for each latent."""
        if captions is None:
            num = len(z) if z is not None else num
            if num is None:
                raise ValueError("generate() needs num, z or captions")
            captions = self.random_captions(num)
        return self.generate_stages(z, captions)[1]

    # ---- objectives ------------------------------------------------------------------------------------
    def discriminator_loss(self, batch: CaptionedBatch) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        real, packed = batch
        captions = unpack(packed)
        text = self.text_encoder(captions.tokens, captions.lengths)  # (B, T): trained by this objective
        with torch.no_grad():
            low, high, _ = self.generator(self.sample_latent(len(real)), text.detach())
        mismatched = text.roll(1, dims=0)  # each real image with the next image's caption
        n, total, terms, real_scores, fake_scores = len(real), real.new_zeros(()), {}, [], []
        adversarial, penalties = [], []
        for stage, discriminator, real_images, fake_images in (
            (1, self.discriminator_1, F.avg_pool2d(real, 2), low),
            (2, self.discriminator_2, real, high),
        ):
            scores, logits = discriminator(
                torch.cat([real_images, fake_images, real_images]), torch.cat([text, text, mismatched])
            )
            real_s, fake_s, mismatched_s = scores[:n], scores[n : 2 * n], scores[2 * n :]
            fake_term = self.loss.d_loss(real_s, fake_s)
            mismatch_term = self.loss.d_loss(real_s, mismatched_s)
            penalty = self.penalty_terms(lambda images, d=discriminator: d(images, text)[0], real_images, fake_images)
            attributes = attribute_loss(logits[:n], captions.measured)  # what the real images show
            d_loss = 0.5 * (fake_term + mismatch_term)
            total = total + sum(penalty.values(), d_loss) + self.hparams.attribute_weight * attributes
            adversarial.append(d_loss)
            penalties.extend(penalty.values())
            terms |= {
                f"loss/d{stage}_fake": fake_term,
                f"loss/d{stage}_mismatch": mismatch_term,
                f"loss/d{stage}_attributes": attributes,
            }
            real_scores.append(real_s)
            fake_scores.append(fake_s)
        caption_attributes = attribute_loss(self.caption_head(text), captions.mentioned)
        total = total + self.hparams.caption_attribute_weight * caption_attributes
        terms |= {
            "loss/d": adversarial[0] + adversarial[1],
            "loss/caption_attributes": caption_attributes,
        }
        if penalties:  # both stages' D penalties, when the objective has one
            terms["loss/d_penalty"] = penalties[0] + penalties[1]
        return total, torch.cat(real_scores), torch.cat(fake_scores), terms

    def generator_loss(self, batch: CaptionedBatch) -> tuple[Tensor, dict[str, Tensor]]:
        real, packed = batch
        captions = unpack(packed)
        text = self.text_encoder(captions.tokens, captions.lengths)  # frozen here: D's optimizer trains it
        z = self.sample_latent(len(real))
        low, high, kl = self.generator(z, text)
        scores_1, logits_1 = self.discriminator_1(low, text)
        scores_2, logits_2 = self.discriminator_2(high, text)
        adversarial_1, adversarial_2 = self.loss.g_loss(scores_1), self.loss.g_loss(scores_2)
        attributes = attribute_loss(logits_1, captions.mentioned) + attribute_loss(logits_2, captions.mentioned)
        total = adversarial_1 + adversarial_2 + self.hparams.kl_weight * kl + self.hparams.attribute_weight * attributes
        terms = {
            "loss/g": adversarial_1 + adversarial_2,
            "loss/g1": adversarial_1,
            "loss/g2": adversarial_2,
            "loss/kl": kl,
            "loss/g_attributes": attributes,
        }
        if self.hparams.mode_seeking_weight > 0:
            terms["loss/mode_seeking"] = self.mode_seeking(z, low, high, text)
            total = total + self.hparams.mode_seeking_weight * terms["loss/mode_seeking"]
        return total, terms

    def mode_seeking(self, z: Tensor, low: Tensor, high: Tensor, text: Tensor, eps: float = 1e-5) -> Tensor:
        """MSGAN's term: images of a second noise draw for the same captions, and 1 / (how far apart the two
        draws' images are, per unit of distance between their noise), both stages' images counted."""
        z_other = self.sample_latent(len(z))
        low_other, high_other, _ = self.generator(z_other, text)
        images_apart = (low - low_other).abs().mean() + (high - high_other).abs().mean()
        return 1 / (images_apart / (z - z_other).abs().mean() + eps)

    # ---- validation and test: stage II's verdict on real images with their caption and with another --------
    def score_real(self, batch: CaptionedBatch, stage: str) -> None:
        images, packed = batch
        text = self.encode(packed)
        scores, _ = self.discriminator_2(images, text)
        mismatched, _ = self.discriminator_2(images, text.roll(1, dims=0))
        n = len(images)
        self.log(f"{stage}/D(x)", self.loss.d_output(scores).mean(), sync_dist=True, batch_size=n)
        self.log(f"{stage}/D_mismatched(x)", self.loss.d_output(mismatched).mean(), sync_dist=True, batch_size=n)
