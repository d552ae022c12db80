"""Index samplers over in-memory datasets: seeded, sharded across DDP ranks, and resumable mid-epoch."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler


class EpochBatches(Sampler[torch.Tensor]):
    """Index batches over ``size`` items: a fresh seeded permutation each epoch, split evenly across DDP ranks.

    Every rank gets the same number of batches (the permutation is cut to a multiple of ``world_size``), so
    collective calls stay in step. Lightning calls ``set_epoch`` at the start of every epoch. The position in
    the epoch is state (``state_dict``) that checkpoints keep, so a run resumed mid-epoch goes on with the
    batches it had not seen yet instead of starting the epoch again.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
    ):
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.drop_last, self.rank, self.world_size = drop_last, rank, world_size
        # Where the index batches go: the device of a dataset resident there, so that a batch is gathered there
        # with no copy per step. The permutation is drawn on the CPU (the same on every device: exact resumes).
        self.device = torch.device(device)
        self.epoch = 0
        self.yielded = 0  # batches handed out in this epoch
        self._resume_at: dict[str, int] | None = None  # a position loaded from a checkpoint, used once

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rank_indices(self) -> torch.Tensor:
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.size)
        usable = self.size - self.size % self.world_size
        return order[:usable][self.rank :: self.world_size].to(self.device)  # one copy per epoch

    def __iter__(self):
        resume, self._resume_at = self._resume_at, None
        self.yielded = resume["yielded"] if resume is not None and resume["epoch"] == self.epoch else 0
        batches = [
            batch
            for batch in self._rank_indices().split(self.batch_size)
            if len(batch) == self.batch_size or not self.drop_last
        ]
        while self.yielded < len(batches):
            self.yielded += 1
            yield batches[self.yielded - 1]

    # Lightning fetches no batch ahead when the loader has a length, so at a checkpoint ``yielded`` counts the
    # batches trained on in this epoch, the current one included.
    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "yielded": self.yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = dict(state)

    def __len__(self) -> int:
        per_rank = self.size // self.world_size
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)


class ResumableLoader(DataLoader):
    """A DataLoader with its sampler's ``state_dict``: Lightning saves it in checkpoints and loads it on resume."""

    def state_dict(self) -> dict:
        return self.sampler.state_dict() if hasattr(self.sampler, "state_dict") else {}

    def load_state_dict(self, state: dict) -> None:
        if state and hasattr(self.sampler, "load_state_dict"):
            self.sampler.load_state_dict(state)


def index_batch_loader(
    dataset: Any,
    batch_size: int,
    train: bool,
    seed: int,
    trainer: Any,
    sampler_class: type = EpochBatches,
    device: torch.device | str = "cpu",
) -> ResumableLoader:
    """This DDP rank's index batches of ``dataset`` (shuffled, the last partial batch dropped, in training), in a
    loader that checkpoints its position. batch_size=None: the dataset slices each index batch in one go, on
    ``device`` where the dataset's tensors are."""
    rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
    sampler = sampler_class(
        len(dataset),
        batch_size,
        shuffle=train,
        seed=seed,
        drop_last=train,
        rank=rank,
        world_size=world_size,
        device=device,
    )
    return ResumableLoader(dataset, batch_size=None, sampler=sampler)


class PassWithDrawnPartner(Sampler[torch.Tensor]):
    """One seeded pass of ``EpochBatches`` per epoch (sharded across ranks), each batch with partners drawn from a
    second index set's own seeded stream of permutations, per epoch and rank, over and over. Resumable mid-epoch:
    the pass goes on from its checkpointed position and the stream skips the draws of the batches already done."""

    def __init__(self, passes: EpochBatches, partners: int, draws_per_batch: int, seed: int, rank: int):
        self.passes, self.partners, self.draws_per_batch = passes, partners, draws_per_batch
        self.seed, self.rank = seed, rank

    def set_epoch(self, epoch: int) -> None:
        self.passes.set_epoch(epoch)

    def _stream(self):
        # Its own seeded stream per epoch and rank: ranks draw different partners.
        generator = torch.Generator().manual_seed(self.seed + 7919 * self.passes.epoch + 104729 * (self.rank + 1))
        while True:
            yield from torch.randperm(self.partners, generator=generator).tolist()

    def batches_with_partners(self):
        """(a batch of the pass, its ``draws_per_batch`` partner positions) for each batch left in this epoch."""
        stream = self._stream()
        for number, batch in enumerate(self.passes):
            if number == 0:  # a resumed epoch starts past its first batches: skip their draws too
                for _ in range((self.passes.yielded - 1) * self.draws_per_batch):
                    next(stream)
            yield batch, torch.tensor([next(stream) for _ in range(self.draws_per_batch)])

    def state_dict(self) -> dict[str, int]:
        return self.passes.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.passes.load_state_dict(state)

    def __len__(self) -> int:
        return len(self.passes)


class SemiSupervisedBatches(PassWithDrawnPartner):
    """Index batches for semi-supervised training: per discriminator step, ``batch_size`` unlabelled examples
    then ``batch_size`` labelled ones, as in Salimans et al. 2016 (a labelled batch as large as the unlabelled
    one, drawn from the few labelled examples over and over). An epoch is one pass over the unlabelled examples,
    seeded and sharded across ranks like ``EpochBatches``; the labelled examples are reshuffled at every pass.
    """

    def __init__(
        self,
        unlabelled: torch.Tensor,
        labelled: torch.Tensor,
        batch_size: int,
        chunks: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.unlabelled, self.labelled, self.batch_size, self.chunks = unlabelled, labelled, batch_size, chunks
        passes = EpochBatches(
            len(unlabelled),
            batch_size * chunks,
            shuffle=True,
            seed=seed,
            drop_last=True,
            rank=rank,
            world_size=world_size,
        )
        super().__init__(passes, len(labelled), batch_size * chunks, seed, rank)

    def __iter__(self):
        for positions, partners in self.batches_with_partners():
            unlabelled = self.unlabelled[positions].view(self.chunks, self.batch_size)  # (k, B)
            labelled = self.labelled[partners].view(self.chunks, self.batch_size)
            yield torch.cat([unlabelled, labelled], dim=1).flatten()  # (k * 2B,): chunk i = [B unlabelled, B labelled]


class UnpairedBatches(PassWithDrawnPartner):
    """Index batches of two unpaired domains, (2, n): row 0 indexes domain A, row 1 domain B, no pairing implied.

    An epoch is one pass over the larger domain (seeded, sharded across ranks like ``EpochBatches``); the smaller
    one is drawn from its own seeded stream of permutations, per epoch and rank, over and over, so every batch
    has n images of each. Resumable mid-epoch: the stream skips the draws of the batches already trained on.
    """

    def __init__(self, size_a: int, size_b: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.larger = 0 if size_a >= size_b else 1
        larger, smaller = (size_a, size_b) if self.larger == 0 else (size_b, size_a)
        passes = EpochBatches(
            larger, batch_size, shuffle=True, seed=seed, drop_last=True, rank=rank, world_size=world_size
        )
        super().__init__(passes, smaller, batch_size, seed, rank)

    def __iter__(self):
        for rows, other in self.batches_with_partners():
            yield torch.stack([rows, other] if self.larger == 0 else [other, rows])  # (2, n)


class TwoDomainBatches(Sampler[tuple[torch.Tensor, torch.Tensor]]):
    """For evaluation: (A indices, B indices) batches that visit every image of each domain once, in order,
    sharded across ranks. The shorter domain's batches run out first and are then empty."""

    def __init__(self, size_a: int, size_b: int, batch_size: int, rank: int = 0, world_size: int = 1):
        self.samplers = [
            EpochBatches(size, batch_size, shuffle=False, seed=0, drop_last=False, rank=rank, world_size=world_size)
            for size in (size_a, size_b)
        ]

    def __iter__(self):
        a_batches, b_batches = (list(sampler) for sampler in self.samplers)
        empty = torch.zeros(0, dtype=torch.long)
        for number in range(len(self)):
            yield (
                a_batches[number] if number < len(a_batches) else empty,
                b_batches[number] if number < len(b_batches) else empty,
            )

    def __len__(self) -> int:
        return max(len(sampler) for sampler in self.samplers)
