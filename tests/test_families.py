"""The contract every GAN family keeps (``tests/families.py`` lists them): it trains with every loss it accepts
and refuses the others in one line; alone on the default data it trains or stops in one line naming its preset;
a resumed run is the uninterrupted one; evaluate.py and sample.py work from its checkpoint alone; two DDP ranks
on CPU end in step. A family's own test file keeps only what is special to it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from ganlab.evaluate import evaluate
from ganlab.models.gan import GAN
from ganlab.networks.augment import AugmentedDiscriminator
from ganlab.sample import sample
from ganlab.train import run, train

from conftest import app_config, compose_config
from families import FAMILIES, LOSSES, NO_FID, logged_losses, resume_and_compare, run_script
from recorders import InitialWeights, find


def networks_moved(trainer, gan: GAN) -> dict[str, bool]:
    """For each network G's and D's optimizers train: whether any of its parameters changed."""
    initial = find(trainer, InitialWeights)
    names = {name for name, module in gan.named_children() if any(True for _ in module.parameters())}
    trained = {id(p) for group in gan.parameter_groups().values() for g in group for p in g["params"]}
    return {
        name: initial.moved(gan, f"{name}.")
        for name in names
        if any(id(p) in trained for p in getattr(gan, name).parameters())
    }


@pytest.mark.parametrize("family, loss", [(family, loss) for family in FAMILIES for loss in LOSSES])
def test_trains_with_every_loss_it_accepts_and_refuses_the_others_in_one_line(make_cfg, family, loss):
    spec = FAMILIES[family]
    if loss not in spec.losses:  # on the defaults, not the preset, whose loss settings belong to its own loss
        cfg = make_cfg([*spec.with_loss(loss), "trainer.max_steps=1"])
        with pytest.raises(
            Exception, match="goes with loss=began|has BatchNorm|pairs each fake with a real"
        ) as error:  # when the model is built
            train(cfg)
        assert "\n" not in str(error.value.__cause__ or error.value).strip()
        return
    overrides = ["trainer.max_steps=2", "trainer.log_every_n_steps=1", "test=false", *NO_FID]
    cfg = make_cfg(spec.overrides(f"loss={loss}", *overrides))
    with open_dict(cfg):
        cfg.callbacks.initial = {"_target_": "recorders.InitialWeights"}
    result = train(cfg)
    trainer, gan = result["trainer"], result["model"]
    assert trainer.global_step == 2
    for name in ["loss/d", "loss/g", "D(x)", "D(G(z))"]:
        assert torch.isfinite(torch.tensor(result["metrics"][name])), name
    # the D penalty is logged by the objectives that have one (WGAN-GP, R3GAN's R1 + R2), by no other: no zero curve
    assert ("loss/d_penalty" in trainer.logged_metrics) == gan.loss.penalizes_gradients
    moved = networks_moved(trainer, gan)
    assert moved and all(moved.values()), f"an update left a network unchanged: {moved}"
    assert all(torch.isfinite(p).all() for p in gan.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_alone_on_the_default_data_it_trains_or_stops_in_one_line_naming_its_preset(tmp_path, caplog, family):
    spec = FAMILIES[family]
    cfg = compose_config(tmp_path, [f"model={spec.model}", *spec.model_overrides(), "trainer.max_steps=1", *NO_FID])
    with caplog.at_level(logging.ERROR, logger="ganlab"):
        if spec.trains_alone:
            run(cfg)
            return
        with pytest.raises(SystemExit) as stop:
            run(cfg)
    assert stop.value.code == 1
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert f"experiment={spec.preset}" in errors[0], errors[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_model_augment_puts_every_discriminator_behind_diffaugment(make_cfg, family):
    """A base switch every family takes, also the families that build their own discriminators."""
    overrides = ["model.augment=[translation]", "trainer.max_steps=1", "test=false", *NO_FID]
    gan = train(make_cfg(FAMILIES[family].overrides(*overrides)))["model"]
    critics = gan.critic_networks()
    assert critics and all(isinstance(net, AugmentedDiscriminator) for net in critics)


# ---- exact resume --------------------------------------------------------------------------------------
@pytest.mark.parametrize("family, resume_step", [("mlp", 4), *((family, 6) for family in FAMILIES)])
def test_a_resumed_run_is_the_uninterrupted_run(tmp_path, family, resume_step):  # 4: an epoch's end; 6: mid-epoch
    args = FAMILIES[family].overrides("model.lr_decay_start=5" if family == "cyclegan" else "trainer.max_steps=10")
    full, resumed = resume_and_compare(tmp_path, args, resume_step)
    assert resumed["trainer"].global_step == 10
    expected, found = logged_losses(tmp_path / "full"), logged_losses(tmp_path / "resumed")
    assert sorted(found) == list(range(resume_step, 10))  # the CSV's step is 0-based
    assert {step: expected[step] for step in found} == found
    for name, tensor in full["model"].state_dict().items():
        assert torch.equal(tensor, resumed["model"].state_dict()[name]), name
    # The objective's state too: BEGAN's k_t goes on from the checkpoint's value, not from k_0 = 0.
    assert resumed["model"].loss.state_dict() == full["model"].loss.state_dict()


# ---- from the checkpoint alone -----------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_evaluate_and_sample_work_from_its_checkpoint_alone(make_cfg, tmp_path, family):
    train(make_cfg(FAMILIES[family].overrides("trainer.max_steps=2", *NO_FID)))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    results = evaluate(app_config("evaluate", tmp_path / "eval", [f"ckpt_path={ckpt}", "num_samples=60"]))
    assert torch.isfinite(torch.tensor(results["fid"])) and results["global_step"] == 2
    assert (tmp_path / "eval" / "metrics.json").is_file()
    paths = sample(app_config("sample", tmp_path / "sample", [f"ckpt_path={ckpt}", "num_samples=8"]))
    assert paths and all(Path(path).is_file() and Path(path).stat().st_size > 0 for path in paths.values())


# ---- two DDP ranks on CPU ------------------------------------------------------------------------------------
# mlp, cyclegan and stackgan have DDP tests of their own (test_distributed, test_cyclegan, test_stackgan), and cGAN
# and ACGAN train as dcgan does (one G, one D, one optimizer each): their smoke runs here are marked slow, to keep
# the suite's time. Those left: dcgan, and the families with more than two optimizers or batch-dependent state.
OWN_DDP_TESTS = ("mlp", "cyclegan", "stackgan", "cgan", "acgan")


@pytest.mark.parametrize(
    "family", [pytest.param(f, marks=pytest.mark.slow) if f in OWN_DDP_TESTS else f for f in FAMILIES]
)
def test_two_ddp_ranks_on_cpu_train_in_step(tmp_path, family):
    run_dir = tmp_path / "run"
    result = run_script(
        "train.py",
        *FAMILIES[family].overrides(),
        "accelerator=ddp_cpu",
        "trainer.max_steps=2",
        "data.download=false",
        "callbacks.progress_bar=null",
        "trainer.enable_model_summary=false",
        "test=false",
        *NO_FID,
        f"hydra.run.dir={run_dir}",
        "+callbacks.dump._target_=dump_rank_state.DumpRankState",
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent), "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rank0, rank1 = (torch.load(run_dir / f"rank{rank}.pt", weights_only=False) for rank in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2 and rank0["global_step"] == rank1["global_step"] == 2
    for name, tensor in rank0["parameters"].items():  # synchronized, and trained
        assert torch.equal(tensor, rank1["parameters"][name]), name
    assert any(not torch.equal(t, rank0["initial"][n]) for n, t in rank0["parameters"].items())
    assert rank0["loss"] == rank1["loss"]
