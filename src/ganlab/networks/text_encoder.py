"""A caption encoder trained with the GAN: token embeddings and a bidirectional GRU (``torch.nn``).

StackGAN (Zhang et al. 2017) takes a pretrained char-CNN-RNN embedding; here the encoder learns from the
matching-aware discriminators' objective (a real image with its own caption against one with another caption).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence


class TextEncoder(nn.Module):
    """(token ids (B, T) 0-padded, lengths (B,)) -> caption embedding (B, text_dim)."""

    def __init__(self, vocabulary_size: int, text_dim: int = 64, embedding_dim: int = 32, hidden_dim: int = 64):
        super().__init__()
        self.text_dim = text_dim
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim, padding_idx=0)
        self.gru = nn.GRU(embedding_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.project = nn.Linear(2 * hidden_dim, text_dim)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        words = self.embedding(tokens)  # (B, T, E)
        packed = pack_padded_sequence(words, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.gru(packed)  # (2, B, H): the last state of each direction
        return self.project(torch.cat([hidden[0], hidden[1]], 1))  # (B, text_dim)
