"""Generators and discriminators. They know nothing of losses or Lightning: G maps (B, latent_dim) noise to
(B, C, H, W) images in [-1, 1]; D maps images to raw logits (B,)."""
