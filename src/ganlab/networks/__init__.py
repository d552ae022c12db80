"""Plain generator and discriminator networks (``nn.Module``s). They know nothing of losses or Lightning.

The contract every GAN in ``ganlab.models`` relies on:

- A generator maps its inputs to images (B, C, H, W) on the data's [-1, 1] scale: ``G(z)`` with z (B, latent_dim),
  or ``G(z, y)`` for the class-conditional ones with labels y (B,). A tanh output stays inside [-1, 1]; the
  semi-supervised G's ``output: softplus`` starts at -1 and has no ceiling.
- A discriminator returns its adversarial score (B,): a raw logit (the losses apply sigmoid themselves, stably),
  or BEGAN's reconstruction error (``score = "reconstruction_error"`` on the class says which). Discriminators
  with auxiliary outputs return a tuple whose first item is that score: ACGAN's ``(score, class_logits (B, N))``,
  the semi-supervised one's ``(score, class_logits (B, N), features (B, F))``. The projection discriminator of
  cGAN takes the labels too: ``D(x, y)``.
"""
