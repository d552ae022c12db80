"""Exact resume: a run stopped (by a checkpoint interval or a real signal) and resumed logs the losses of an
uninterrupted run, in the same run dir."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganlab.data.samplers import EpochBatches
from ganlab.train import train

from conftest import compose_config
from families import SHORT_EPOCHS, logged_losses, resume_and_compare

REPO = Path(__file__).resolve().parents[1]
QUICK = ["model=mlp", "logger=csv", "callbacks.fid=null", "callbacks.best_fid_checkpoint=null"]


def test_sampler_goes_on_from_its_saved_position():
    sampler = EpochBatches(size=100, batch_size=10, shuffle=True, seed=3, drop_last=True)
    sampler.set_epoch(2)
    uninterrupted = list(sampler)
    iterator = iter(sampler)
    first = [next(iterator) for _ in range(4)]
    state = sampler.state_dict()
    assert state == {"epoch": 2, "yielded": 4}

    resumed = EpochBatches(size=100, batch_size=10, shuffle=True, seed=3, drop_last=True)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)
    rest = list(resumed)
    assert [b.tolist() for b in first + rest] == [b.tolist() for b in uninterrupted]
    assert len(list(resumed)) == 10  # the saved position is used once; the next pass is a whole epoch


def test_a_run_resumed_at_an_epochs_end_twice_in_a_row_stays_on_the_uninterrupted_run(make_cfg, tmp_path):
    # Lightning runs the epoch after an end-of-epoch resume without counting its start; the next end-of-epoch
    # checkpoint then made a second resume repeat that epoch (with other batches): ganlab.run.checkpoints.repair_epoch_progress.
    full = train(make_cfg([*SHORT_EPOCHS, "model=mlp", "trainer.max_steps=10"]))
    first = Path(full["trainer"].default_root_dir) / "checkpoints" / "step_0000004.ckpt"  # end of epoch 0
    train(compose_config(tmp_path / "once", [*SHORT_EPOCHS, "model=mlp", "trainer.max_steps=8", f"ckpt_path={first}"]))
    second = tmp_path / "once" / "checkpoints" / "step_0000008.ckpt"  # end of epoch 1, written by the resumed run
    assert torch.load(second, weights_only=False)["epoch"] == 1
    twice = train(
        compose_config(tmp_path / "twice", [*SHORT_EPOCHS, "model=mlp", "trainer.max_steps=10", f"ckpt_path={second}"])
    )
    assert twice["trainer"].current_epoch == full["trainer"].current_epoch
    for name, tensor in full["model"].state_dict().items():
        assert torch.equal(tensor, twice["model"].state_dict()[name]), name


def test_a_run_dir_moved_elsewhere_resumes_into_its_own_last_ckpt(tmp_path):
    train(compose_config(tmp_path / "first", [*QUICK, "trainer.max_steps=4"]))
    shutil.copytree(tmp_path / "first", tmp_path / "moved")  # a copied or moved run dir, resumed there
    checkpoints = tmp_path / "moved" / "checkpoints"
    train(compose_config(tmp_path / "moved", [*QUICK, "trainer.max_steps=6", f"ckpt_path={checkpoints / 'last.ckpt'}"]))
    last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 6 and not list(checkpoints.glob("last-v*.ckpt"))  # not a last-v1.ckpt beside it


def test_a_finished_run_trained_on_to_a_longer_budget_equals_a_straight_run(tmp_path):
    """``last.ckpt`` holds the last update also when the budget is not a multiple of the checkpoint interval
    (Lightning kept update 5's there), with the raw weights to train on from (it held the averaged ones, written
    after the EMA had put them in); a checkpoint saved after fit keeps them too."""
    quick = [*QUICK, "callbacks.model_checkpoint.every_n_train_steps=5"]
    finished = train(compose_config(tmp_path / "finished", [*quick, "trainer.max_steps=7"]))
    last = tmp_path / "finished" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 7
    raw, averaged = checkpoint["current_model_state"], checkpoint["state_dict"]
    assert any(not torch.equal(raw[name], averaged[name]) for name in raw)
    finished["trainer"].save_checkpoint(tmp_path / "after_fit.ckpt")
    after_fit = torch.load(tmp_path / "after_fit.ckpt", map_location="cpu", weights_only=False)
    assert all(torch.equal(raw[name], after_fit["current_model_state"][name]) for name in raw)

    straight = train(compose_config(tmp_path / "straight", [*quick, "trainer.max_steps=10"]))
    on = train(compose_config(tmp_path / "finished", [*quick, "trainer.max_steps=10", f"ckpt_path={last}"]))
    for name, tensor in straight["model"].state_dict().items():
        assert torch.equal(tensor, on["model"].state_dict()[name]), name


def _ema_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "ganlab.callbacks.ema"]


def test_a_resume_with_another_average_schedule_names_the_overrides_that_keep_the_runs(tmp_path, caplog):
    train(compose_config(tmp_path, [*QUICK, "trainer.max_steps=2", "callbacks.ema.decay=0.9"]))
    last = tmp_path / "checkpoints" / "last.ckpt"
    with caplog.at_level(logging.WARNING, logger="ganlab.callbacks.ema"):
        train(compose_config(tmp_path, [*QUICK, "trainer.max_steps=3", "callbacks.ema.decay=0.9", f"ckpt_path={last}"]))
        assert not _ema_warnings(caplog)  # the same schedule: nothing to say
        overrides = ["callbacks.ema.decay=0.999", "callbacks.ema.half_life_rampup=0.05", f"ckpt_path={last}"]
        train(compose_config(tmp_path, [*QUICK, "trainer.max_steps=4", *overrides]))
    (warning,) = _ema_warnings(caplog)
    assert "callbacks.ema.decay=0.9 callbacks.ema.half_life_rampup=null and goes on with" in warning
    assert "callbacks.ema.decay=0.999 callbacks.ema.half_life_rampup=0.05" in warning


def test_without_step_seed_a_resumed_run_draws_other_noise(make_cfg, tmp_path):
    """What StepSeed is for: without it the resumed steps draw noise and dropout from wherever the global RNG
    happens to be after loading, and the losses part from the uninterrupted run's."""
    full, resumed = resume_and_compare(
        tmp_path,
        [
            "model=dcgan",
            "callbacks.step_seed=null",
            "model.generator.base_channels=8",
            "model.discriminator.base_channels=8",
        ],
        6,
    )
    expected, found = logged_losses(tmp_path / "full"), logged_losses(tmp_path / "resumed")
    assert sorted(found) == list(range(6, 10))
    assert all(found[step] != expected[step] for step in found)


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_step(run_dir: Path, step: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()[-3000:]
        if (run_dir / "csv" / "metrics.csv").exists() and max(logged_losses(run_dir), default=-1) >= step:
            return
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"no step {step} logged in {timeout} s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_signal_saves_a_checkpoint_and_the_run_resumes_in_its_dir(make_cfg, tmp_path, signum):
    args = [
        *(a for a in SHORT_EPOCHS if a != "logger=csv"),
        "model=mlp",
        "logger=[csv,tensorboard]",
        "trainer.log_every_n_steps=1",
        "data.batch_size=16",
        "data.download=false",
        "callbacks.progress_bar=null",
        "trainer.enable_model_summary=false",
        "trainer.limit_val_batches=2",
    ]
    run_dir = tmp_path / "run"
    process = _start([*args, "trainer.max_steps=100000", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    _wait_for_step(run_dir, 3, process)
    process.send_signal(signum)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 128 + signum, output[-3000:]
    last = run_dir / "checkpoints" / "last.ckpt"
    stopped_at = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert stopped_at >= 4
    assert f"stopped by {signal.Signals(signum).name} after step {stopped_at}; checkpoint saved to {last}" in output
    assert "Traceback" not in output

    # Resuming from the checkpoint path goes on in the same run dir (hydra.run.dir follows ckpt_path).
    resumed = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args, f"trainer.max_steps={stopped_at + 3}", f"ckpt_path={last}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert (
        len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 2
    )  # one per start: one run in TensorBoard

    reference = train(make_cfg([*args, f"trainer.max_steps={stopped_at + 3}"]))
    expected = logged_losses(Path(reference["trainer"].default_root_dir))
    found = logged_losses(run_dir)  # the interrupted part and the resumed part, one log
    assert sorted(found) == list(range(stopped_at + 3))
    assert found == expected


# dcgan: BatchNorm in G (about 40 s: in the slow suite)
@pytest.mark.parametrize("model", ["mlp", pytest.param("dcgan", marks=pytest.mark.slow)])
def test_ema_weights_fill_checkpoints_and_the_final_model_and_resume_exactly(make_cfg, tmp_path, model):
    from ganlab.models.gan import GAN

    # The half-life ramp-up sets every update's decay here (0.5 ** (10 / t) < 0.5): resuming must restore it too.
    ema = [
        "callbacks=[default,ema]",
        "callbacks.ema.decay=0.5",
        "callbacks.ema.half_life_rampup=0.1",
        "callbacks.ema.batchnorm_batches=50",
    ]
    args = [*SHORT_EPOCHS, f"model={model}", "trainer.max_steps=10", *ema]
    full = train(make_cfg(args))
    full_dir = Path(full["trainer"].default_root_dir)
    checkpoint = torch.load(full_dir / "checkpoints" / "step_0000006.ckpt", map_location="cpu", weights_only=False)
    averaged, raw = checkpoint["state_dict"], checkpoint["current_model_state"]  # EMA for users, raw for resuming
    first = next(name for name in averaged if name.startswith("generator.") and name.endswith("weight"))
    assert not torch.equal(averaged[first], raw[first])

    resumed = train(
        compose_config(tmp_path / "resumed", [*args, f"ckpt_path={full_dir / 'checkpoints' / 'step_0000006.ckpt'}"])
    )
    final = full["model"].state_dict()  # after training the module holds the averaged weights
    for name, tensor in final.items():
        assert torch.allclose(tensor.float(), resumed["model"].state_dict()[name].float()), name
    reloaded = GAN.load_from_checkpoint(full_dir / "checkpoints" / "last.ckpt", map_location="cpu")
    assert torch.equal(reloaded.generator.state_dict()[first.removeprefix("generator.")], final[first])

    # The averaged G's BatchNorm statistics were measured for its own weights: a fresh measurement agrees.
    stats = {name: tensor.clone() for name, tensor in reloaded.generator.state_dict().items() if "running_var" in name}
    assert stats  # both generators have BatchNorm
    torch.manual_seed(1)
    reloaded.remeasure_batchnorm(num_batches=50)
    for name, var in stats.items():
        assert torch.allclose(var, reloaded.generator.state_dict()[name], rtol=0.2, atol=1e-3), name
