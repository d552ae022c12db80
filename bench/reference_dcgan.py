"""PyTorch-GAN's DCGAN (eriklindernoren/PyTorch-GAN, implementations/dcgan/dcgan.py) as a plain loop at 28x28, on
the project's training split, scored like a ``bench/quality.py`` row.

    python bench/reference_dcgan.py --steps 3000 --seed 0 --data mnist
    python bench/reference_dcgan.py --steps 200 --time-only          # seconds per generator update

Written from the published description, not copied: G is linear -> (128, 7, 7) -> BatchNorm -> two blocks of
nearest 2x upsampling + 3x3 conv + BatchNorm(eps=0.8) + LeakyReLU(0.2) (128->128, 128->64) -> 3x3 conv to 1
channel -> tanh; D is four 3x3 stride-2 convs (16, 32, 64, 128 channels) with LeakyReLU(0.2) and Dropout2d(0.25),
BatchNorm(eps=0.8) after all but the first, then linear -> sigmoid; BCE; Adam(2e-4, (0.5, 0.999)); batch 64;
G is updated before D in each iteration, and D sees that same (detached) fake batch. Two departures, both
forced by 28x28: the published head has ``128 * (img_size // 16) ** 2`` inputs, which is 128 at 28 while the
trunk gives (128, 2, 2), so the head's width is taken from the trunk; and the data are the project's (the
datamodule's training split, already in memory, scaled to [-1, 1] like Normalize(0.5, 0.5)), reshuffled every
epoch, last short batch kept (the published DataLoader(shuffle=True)).

Scores: GANScores of the dataset's domain classifier, ``num_samples`` images from G in eval mode (BatchNorm
running statistics) against the test split, samples drawn after ``seed_everything(0)``: what ``evaluate.py``
does for a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from torch import Tensor, nn
from torchvision.utils import save_image

import ganlab.config.family_schemas  # noqa: F401  (registers the config schemas that conf/ extends)
from ganlab.metrics.scores import GANScores, real_batches

REPO = Path(__file__).resolve().parents[1]
NAME = "reference DCGAN (PyTorch-GAN)"
# What a quality row keeps of the scores (this loop's rows and bench/quality.py's): FID and KID, the class-level
# scores (the class shares too: Stacked MNIST's per-channel digits are read from them), and the k-NN fidelity
# (precision, density) and diversity (recall, coverage) scores (docs/metrics.md).
SCORES = (
    *("fid", "kid_mean", "kid_std", "classifier_score", "coverage_kl", "classes_covered", "modes", "class_shares"),
    *("precision", "recall", "density", "coverage"),
)


def weights_init_normal(module: nn.Module) -> None:
    """The published init: conv weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02), BatchNorm shifts 0; linear left at torch's default."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    def __init__(self, latent_dim: int = 100, channels: int = 1, img_size: int = 28):
        super().__init__()
        self.init_size = img_size // 4
        self.l1 = nn.Linear(latent_dim, 128 * self.init_size**2)
        self.conv = nn.Sequential(
            nn.BatchNorm2d(128),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, stride=1, padding=1),
            nn.BatchNorm2d(128, eps=0.8),  # eps=0.8 as published (the positional arg is eps, not momentum)
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, stride=1, padding=1),
            nn.BatchNorm2d(64, eps=0.8),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, channels, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        x = self.l1(z).view(z.shape[0], 128, self.init_size, self.init_size)  # (B, 128, 7, 7)
        return self.conv(x)  # (B, 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self, channels: int = 1, img_size: int = 28):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = channels
        for out_channels, batchnorm in [(16, False), (32, True), (64, True), (128, True)]:
            layers += [nn.Conv2d(in_channels, out_channels, 3, 2, 1), nn.LeakyReLU(0.2), nn.Dropout2d(0.25)]
            if batchnorm:
                layers.append(nn.BatchNorm2d(out_channels, eps=0.8))
            in_channels = out_channels
        self.model = nn.Sequential(*layers)
        with torch.no_grad():  # 28 -> 14 -> 7 -> 4 -> 2: (128, 2, 2), not the published img_size // 16 = 1
            features = self.model.eval()(torch.zeros(1, channels, img_size, img_size)).numel()
        self.model.train()
        self.adv_layer = nn.Sequential(nn.Linear(features, 1), nn.Sigmoid())

    def forward(self, images: Tensor) -> Tensor:
        return self.adv_layer(self.model(images).flatten(1))  # (B, 1) probabilities


def datamodule_for(data: str, seed: int, batch_size: int = 64):
    """The project's datamodule of ``python train.py data=<data> seed=<seed>``, set up for fitting."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "train", overrides=[f"data={data}", f"seed={seed}", "data.download=false", f"data.batch_size={batch_size}"]
        )
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    return datamodule, cfg.metrics


def train_reference(
    train_images: Tensor,
    steps: int,
    seed: int,
    batch_size: int = 64,
    latent_dim: int = 100,
    log_every: int = 0,
    after_step: Callable[[int, nn.Module], None] | None = None,
):
    """``steps`` iterations of the published loop (one G update, then one D update, each) on (N, 1, 28, 28) images
    in [-1, 1]. ``after_step(step, generator)`` runs after each iteration (snapshots at intermediate budgets)."""
    torch.manual_seed(seed)
    generator, discriminator = Generator(latent_dim), Discriminator()
    generator.apply(weights_init_normal)
    discriminator.apply(weights_init_normal)
    bce = nn.BCELoss()
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    order = torch.Generator().manual_seed(seed)
    step = 0
    while step < steps:
        for rows in torch.randperm(len(train_images), generator=order).split(batch_size):  # one epoch
            real = train_images[rows]  # (B, 1, 28, 28)
            valid, fake = real.new_ones(len(real), 1), real.new_zeros(len(real), 1)
            # G first, as published
            opt_g.zero_grad()
            generated = generator(torch.randn(len(real), latent_dim))
            g_loss = bce(discriminator(generated), valid)
            g_loss.backward()
            opt_g.step()
            # then D, on the same fakes, detached
            opt_d.zero_grad()
            d_loss = 0.5 * (bce(discriminator(real), valid) + bce(discriminator(generated.detach()), fake))
            d_loss.backward()
            opt_d.step()
            step += 1
            if log_every and step % log_every == 0:
                print(f"step {step}: d {d_loss.item():.3f} g {g_loss.item():.3f}", flush=True)
            if after_step is not None:
                after_step(step, generator)
            if step == steps:
                break
    return generator, discriminator


def run(
    data: str = "mnist",
    steps: int = 1000,
    seed: int = 0,
    num_samples: int = 2000,
    log_every: int = 0,
    save_dir: Path | None = None,
) -> dict:
    """One quality row: train the reference for ``steps`` generator updates, then score it as evaluate.py would.
    ``save_dir``: also keep the trained G's weights (``generator.pt``) and a grid of 64 samples drawn after
    ``seed_everything(0)`` (``samples.png``), for side-by-side grids with the project's runs."""
    return run_budgets(data, [steps], seed, num_samples, log_every, save_dir)[-1]


def run_budgets(
    data: str = "mnist",
    budgets: Sequence[int] = (1000,),
    seed: int = 0,
    num_samples: int = 2000,
    log_every: int = 0,
    save_dir: Path | None = None,
) -> list[dict]:
    """One training run to the largest of ``budgets``, scored at each of them (G as it was after that many
    updates): the rows of ``run`` at every budget, from one run. ``save_dir`` keeps the last budget's G."""
    budgets = sorted(set(budgets))
    datamodule, metrics_cfg = datamodule_for(data, seed)
    images, labels = datamodule.train_set.tensors
    train_images, _ = datamodule.on_after_batch_transfer((images, labels), 0)  # (N, 1, 28, 28) in [-1, 1]
    snapshots: dict[int, tuple[dict[str, Tensor], float]] = {}  # budget -> (G's weights, training seconds)
    start = time.perf_counter()

    def snapshot(step: int, generator: nn.Module) -> None:
        if step in budgets:
            state = {name: tensor.clone() for name, tensor in generator.state_dict().items()}
            snapshots[step] = (state, time.perf_counter() - start)

    generator, _ = train_reference(train_images, budgets[-1], seed, log_every=log_every, after_step=snapshot)
    rows = []
    for steps in budgets:
        state, train_seconds = snapshots[steps]
        generator.load_state_dict(state)
        generator.eval()
        # evaluate.py's order: its default sample seed, the real features (the loader draws a seed), the samples
        L.seed_everything(0, verbose=False)
        scores = GANScores.for_data(datamodule, **metrics_cfg)
        scores.add_real(real_batches(datamodule.test_dataloader(), datamodule, torch.device("cpu")))
        with torch.no_grad():
            scores.add_generated(lambda n: generator(torch.randn(n, 100)), num_samples, metrics_cfg.batch_size)
        results = scores.compute()
        rows.append(
            {
                "data": data,
                "config": NAME,
                "seed": seed,
                "generator_updates": steps,
                "train_seconds": train_seconds,
                "command": f"python bench/reference_dcgan.py --data {data} --steps {steps} --seed {seed} --num-samples {num_samples}",
                **{key: results[key] for key in SCORES},
                "reference": f"test split ({scores.num_real} images)",
                "num_samples": num_samples,
                "extractor": scores.extractor["key"],
            }
        )
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        torch.save(generator.state_dict(), save_dir / "generator.pt")
        L.seed_everything(0, verbose=False)
        with torch.no_grad():
            save_image(
                generator(torch.randn(64, 100)), save_dir / "samples.png", nrow=8, normalize=True, value_range=(-1, 1)
            )
    return rows


REAL_DATA = {  # the floor of every row: real images of a split scored as samples (no training)
    "real data (training split)": "train_set",
    "real data (validation split)": "val_set",
}


def real_data_row(name: str, data: str = "mnist", seed: int = 0, num_samples: int = 2000) -> dict:
    """Real images of the split ``REAL_DATA[name]`` (up to ``num_samples``, drawn without replacement) scored as a
    GAN's samples are, against the test split: what a generator that draws the data itself would score. The
    training split is what G imitates; the validation split (900 images on the bundled MNIST sample: FID's bias
    grows as the sample shrinks) was never trained on by any network."""
    datamodule, metrics_cfg = datamodule_for(data, seed)
    images, labels = getattr(datamodule, REAL_DATA[name]).tensors
    chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:num_samples]
    real, _ = datamodule.on_after_batch_transfer((images[chosen], labels[chosen]), 0)  # (n, 1, 28, 28) in [-1, 1]
    scores = GANScores.for_data(datamodule, **metrics_cfg)
    scores.add_real(real_batches(datamodule.test_dataloader(), datamodule, torch.device("cpu")))
    for batch in real.split(metrics_cfg.batch_size):
        scores.update_fake(batch)
    results = scores.compute()
    return {
        "data": data,
        "config": name,
        "seed": seed,
        "generator_updates": 0,
        "train_seconds": 0.0,
        "command": f"python bench/quality.py --data {data} --seeds {seed} --num-samples {num_samples} --configs {name!r}",
        **{key: results[key] for key in SCORES},
        "reference": f"test split ({scores.num_real} images)",
        "num_samples": len(real),
        "extractor": scores.extractor["key"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--log-every", type=int, default=0)
    parser.add_argument("--time-only", action="store_true", help="train only and print seconds per generator update")
    parser.add_argument("--out", type=Path, default=None, help="append the row as a JSON line to this file")
    parser.add_argument("--save-dir", type=Path, default=None, help="keep G's weights and a 64-sample grid here")
    args = parser.parse_args()
    if args.time_only:
        datamodule, _ = datamodule_for(args.data, args.seed)
        images, labels = datamodule.train_set.tensors
        train_images, _ = datamodule.on_after_batch_transfer((images, labels), 0)
        train_reference(train_images, 10, args.seed)  # warm-up
        start = time.perf_counter()
        train_reference(train_images, args.steps, args.seed)
        seconds = time.perf_counter() - start
        print(
            json.dumps(
                {
                    "config": NAME,
                    "steps": args.steps,
                    "threads": torch.get_num_threads(),
                    "seconds_per_update": seconds / args.steps,
                }
            )
        )
        return
    row = run(args.data, args.steps, args.seed, args.num_samples, args.log_every, args.save_dir)
    print(json.dumps(row))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
