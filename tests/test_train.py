"""End-to-end: every model x loss composes and trains; outputs land where users look for them."""

from __future__ import annotations

import csv

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganlab.data.fashion_mnist import FashionMNISTDataModule
from ganlab.models.gan import GAN
from ganlab.train import train

from families import adam_steps
from recorders import InitialWeights, LearningRates, find


@pytest.mark.parametrize("loss, discriminator_steps", [("nsgan", 1), ("wgan_gp", 5), ("lsgan", 3)])
def test_max_steps_means_generator_updates(make_cfg, tmp_path, loss, discriminator_steps):
    cfg = make_cfg(
        [
            "model=mlp",
            f"loss={loss}",
            f"loss.discriminator_steps={discriminator_steps}",
            "trainer.max_steps=6",
            "logger=csv",
        ]
    )
    result = train(cfg)
    d_opt, g_opt = result["trainer"].optimizers
    assert adam_steps(g_opt) == 6
    assert adam_steps(d_opt) == 6 * discriminator_steps
    assert result["trainer"].global_step == 6
    assert result["trainer"].progress_bar_callback is None  # callbacks.progress_bar=null: no bar, not Lightning's
    # The logged x-axis counts generator updates too: one row per update, steps 0..5.
    with open(tmp_path / "csv" / "metrics.csv") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f) if row["loss/g"]]
    assert steps == list(range(6))


def test_learning_rates_warm_down_linearly_to_zero_in_any_family(make_cfg):
    """model.lr_decay_start: constant, then linear to 0 at trainer.max_steps; the rates each update used."""
    overrides = ["model=mlp", "optimizer=adam", "trainer.max_steps=4", "model.lr_decay_start=2"]
    result = train(make_cfg([*overrides, "+callbacks.rates._target_=recorders.LearningRates"]))
    assert [result["model"].lr_factor(step) for step in range(5)] == [1.0, 1.0, 1.0, 0.5, 0.0]
    rates = find(result["trainer"], LearningRates).used
    expected = [[2e-4 * factor] * 2 for factor in (1.0, 1.0, 1.0, 0.5)]  # (D, G) at updates 0-3
    assert torch.allclose(torch.tensor(rates), torch.tensor(expected))
    assert train(make_cfg(["model=mlp", "trainer.max_steps=1"]))["model"].lr_schedule("generator") is None


def test_logs_every_n_generator_updates_and_the_losses_match_a_denser_run(make_cfg, tmp_path):
    cfg = make_cfg(["model=mlp", "trainer.max_steps=9", "trainer.log_every_n_steps=3", "logger=csv", "seed=3"])
    train(cfg)
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = {int(row["step"]): float(row["loss/g"]) for row in csv.DictReader(f) if row["loss/g"]}
    assert sorted(rows) == [2, 5, 8]  # updates 3, 6 and 9
    every_step = make_cfg(["model=mlp", "trainer.max_steps=9", "trainer.log_every_n_steps=1", "logger=csv", "seed=3"])
    every_step.paths.output_dir = str(tmp_path / "dense")
    train(every_step)
    with open(tmp_path / "dense" / "csv" / "metrics.csv") as f:
        dense = {int(row["step"]): float(row["loss/g"]) for row in csv.DictReader(f) if row["loss/g"]}
    assert {step: dense[step] for step in rows} == rows  # the sparse log holds those steps' own values


@pytest.mark.parametrize(("loss", "penalized"), [([], False), (["loss.r1_gamma=1"], True), (["loss=wgan_gp"], True)])
def test_the_penalty_is_logged_by_objectives_that_have_one(make_cfg, loss, penalized):
    result = train(make_cfg(["model=mlp", "trainer.max_steps=2", "trainer.log_every_n_steps=1", *loss]))
    logged = result["trainer"].logged_metrics
    assert "loss/d" in logged
    assert ("loss/d_penalty" in logged) == penalized  # the default hinge has none: no flat zero curve


def test_tensorboard_log_read_back_has_scalars_and_sample_grid(make_cfg, tmp_path):
    cfg = make_cfg(["model=mlp", "trainer.max_steps=5"])
    train(cfg)
    (event_file,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    events = EventAccumulator(str(event_file), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"loss/d", "loss/g", "D(x)", "D(G(z))"} <= scalars
    assert [event.step for event in events.Scalars("loss/g")] == list(range(5))
    (grid,) = events.Images("samples")
    assert grid.step == 5 and grid.width > 200 and grid.height > 200  # 8x8 grid of 28x28 digits
    assert (tmp_path / "samples" / "step_0000005.png").is_file()


def test_checkpoint_rebuilds_the_model_on_its_own_and_resumes(make_cfg, tmp_path):
    cfg = make_cfg(
        [
            "model=dcgan",
            "loss=lsgan",
            "model.generator.base_channels=8",
            "model.discriminator.base_channels=8",
            "logger=csv",
        ]
    )
    trained = train(cfg)["model"]
    last = tmp_path / "checkpoints" / "last.ckpt"
    restored = GAN.load_from_checkpoint(last, map_location="cpu")
    assert torch.equal(restored.fixed_noise, trained.fixed_noise)
    assert torch.equal(restored.generate(z=restored.fixed_noise), trained.generate(z=trained.fixed_noise))
    assert type(restored.loss).__name__ == "LeastSquaresGAN"

    resumed_cfg = make_cfg(
        [
            "model=dcgan",
            "loss=lsgan",
            "model.generator.base_channels=8",
            "model.discriminator.base_channels=8",
            "logger=csv",
            "trainer.max_steps=7",
            f"ckpt_path={last}",
        ]
    )
    resumed = train(resumed_cfg)
    d_opt, g_opt = resumed["trainer"].optimizers
    assert resumed["trainer"].global_step == 7 and adam_steps(g_opt) == 7 and adam_steps(d_opt) == 7
    assert torch.equal(resumed["model"].fixed_noise, trained.fixed_noise)


@pytest.mark.parametrize("experiment", ["seed_vanilla_gan", "seed_mse_gan", "dcgan_lsgan"])
def test_experiment_presets_train(make_cfg, experiment):
    cfg = make_cfg(
        [
            f"experiment={experiment}",
            "trainer.max_steps=2",
            "logger=csv",
            "data.batch_size=16",
            "+callbacks.initial._target_=recorders.InitialWeights",
        ]
    )
    result = train(cfg)
    assert result["trainer"].global_step == 2 and torch.isfinite(torch.tensor(result["metrics"]["loss/g"]))
    initial = find(result["trainer"], InitialWeights)
    assert initial.moved(result["model"], "generator.") and initial.moved(result["model"], "discriminator.")


@pytest.mark.skipif(
    not any(d.is_dir() for d in FashionMNISTDataModule.system_dirs),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_fashion_mnist_trains(make_cfg):
    result = train(make_cfg(["data=fashion_mnist", "model=mlp", "trainer.max_steps=2", "logger=csv"]))
    assert result["datamodule"].name == "Fashion-MNIST" and result["trainer"].global_step == 2


def test_fid_off_switches_the_best_fid_checkpoint_off_with_it(make_cfg, tmp_path):
    """callbacks.fid=null alone: the checkpoint that selects by val/fid goes too, instead of failing on its
    interpolation of the FID callback's interval."""
    train(make_cfg(["model=mlp", "callbacks.fid=null", "trainer.max_steps=2", "logger=csv"]))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "checkpoints" / "best_fid.ckpt").exists()


@pytest.mark.slow  # compiling G and D on the CPU takes about a minute
def test_compiled_networks_train_and_their_checkpoint_loads_into_eager_ones(make_cfg, tmp_path):
    cfg = make_cfg(
        [
            "model.compile=true",
            "trainer.max_steps=3",
            "logger=csv",
            "++callbacks.fid=null",
            "++callbacks.best_fid_checkpoint=null",
        ]
    )
    trained = train(cfg)["model"]
    assert trained.generator._compiled_call_impl is not None  # compiled in place: the module is the same one
    last = tmp_path / "checkpoints" / "last.ckpt"
    state = torch.load(last, map_location="cpu", weights_only=False)["state_dict"]
    assert not any("_orig_mod" in key for key in state)  # the keys of an eager model: old and new runs mix
    restored = GAN.load_from_checkpoint(last, map_location="cpu")
    assert restored.generator._compiled_call_impl is None
    eager, compiled = restored.generate(z=restored.fixed_noise), trained.generate(z=trained.fixed_noise)
    assert torch.allclose(eager, compiled, atol=1e-5)  # the same weights; fused kernels round differently
