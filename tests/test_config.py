"""Bad input fails early, in one line that names the problem and the fix, and loses nothing already written:
misspelled keys and wrong types (at composition), impossible values, checkpoints that do not fit, bad data files,
unwritable output dirs. And every run dir records how it was made."""

from __future__ import annotations

import gzip
import logging
import shutil

import pytest
import torch
import yaml
from hydra.errors import ConfigCompositionException, MissingConfigException

from ganlab.config.checks import ConfigError
from ganlab.data.sources import BUNDLED_MNIST_SAMPLE
from ganlab.run.checkpoints import CheckpointError
from ganlab.train import run, train

NO_FID = ["++callbacks.fid=null", "++callbacks.best_fid_checkpoint=null", "callbacks.sample_grid=null"]


@pytest.mark.parametrize(
    "override",
    [
        "trainer.max_step=5",
        "data.batch_sise=3",
        "model.latent_dims=8",
        "optimizer.generator.learning_rate=1e-3",
        "seeed=1",
    ],
)
def test_misspelled_key_fails_at_composition(make_cfg, override):
    with pytest.raises(ConfigCompositionException, match=f"Could not override '{override.split('=')[0]}'"):
        make_cfg([override])


@pytest.mark.parametrize(
    "override",
    ["data.batch_size=abc", "model.latent_dim=1.5", "optimizer.discriminator.lr=fast", "trainer.max_steps=many"],
)
def test_wrong_type_fails_at_composition(make_cfg, override):
    with pytest.raises(ConfigCompositionException, match=f"Error merging override {override}"):
        make_cfg([override])


@pytest.mark.parametrize(
    "group, typo",
    [("data", "batch_sise"), ("model", "latent_dims"), ("loss", "discriminator_step"), ("trainer", "max_step")],
)
def test_schemas_also_catch_typos_in_yaml_presets(make_cfg, tmp_path, group, typo):
    """A user's own preset file with a misspelled key fails when Hydra composes it, like a typo on the command line."""
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "typo.yaml").write_text(f"# @package _global_\n{group}:\n  {typo}: 1\n")
    with pytest.raises(ConfigCompositionException) as error:
        make_cfg([f"hydra.searchpath=[file://{tmp_path}]", "experiment=typo"])
    assert typo in str(error.value.__cause__ or error.value)


@pytest.mark.parametrize(
    "experiment, override",
    [
        ("cgan", "model.samples_per_class=1.5"),
        ("acgan", "model.class_weight=heavy"),
        ("sgan", "model.feature_matching=maybe"),
        ("began", "model.latent_dim=wide"),
        ("began", "loss.gamma=high"),
        ("stackgan", "model.kl_weight=lots"),
        ("stackgan_fashion", "data.drop=often"),
    ],
)
def test_every_variant_preset_checks_its_types(make_cfg, experiment, override):
    with pytest.raises(ConfigCompositionException, match=f"Error merging override {override}"):
        make_cfg([f"experiment={experiment}", override])


@pytest.mark.parametrize(
    "override, key",
    [("model.fake_class_weight=-1", "model.fake_class_weight"), ("loss.lambda_k=-0.1", "loss.lambda_k")],
)
def test_variant_bounds_fail_before_training(make_cfg, override, key):
    experiment = "acgan" if override.startswith("model") else "began"
    cfg = make_cfg([f"experiment={experiment}", override, *NO_FID])
    with pytest.raises(ConfigError, match=f"^{key}="):
        train(cfg)


def test_unknown_option_names_the_group_and_the_choices(make_cfg):
    with pytest.raises(MissingConfigException, match="Could not find 'model/stylegan'") as error:
        make_cfg(["model=stylegan"])
    assert "Available options in 'model'" in str(error.value) and "dcgan" in str(error.value)


@pytest.mark.parametrize(
    "override, key",
    [
        ("optimizer.generator.lr=0", "optimizer.generator.lr"),
        ("optimizer.discriminator.lr=-1e-4", "optimizer.discriminator.lr"),
        ("data.batch_size=0", "data.batch_size"),
        ("model.latent_dim=0", "model.latent_dim"),
        ("loss.discriminator_steps=0", "loss.discriminator_steps"),
        ("trainer.num_nodes=0", "trainer.num_nodes"),
    ],
)
def test_impossible_value_fails_before_training_naming_the_key(make_cfg, tmp_path, override, key):
    cfg = make_cfg(["model=mlp", override, *NO_FID])
    with pytest.raises(ConfigError, match=f"^{key}=") as error:
        train(cfg)
    assert "\n" not in str(error.value) and f"set {key} to a value in range" in str(error.value)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "provenance.yaml").exists()


def test_cli_reports_a_user_error_in_one_line_and_exits_1(make_cfg, caplog):
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exit_:
        run(make_cfg(["model=mlp", "data.batch_size=0", *NO_FID]))
    assert exit_.value.code == 1
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == [
        "data.batch_size=0 must be >= 1; set data.batch_size to a value in range, e.g. data.batch_size=64"
    ]


def test_sync_batchnorm_on_cpu_ranks_is_refused_before_training(make_cfg, tmp_path):
    with pytest.raises(ConfigError) as error:
        train(make_cfg(["accelerator=ddp_cpu", "trainer.sync_batchnorm=true"]))
    assert "\n" not in str(error.value) and "trainer.sync_batchnorm=false" in str(error.value)
    assert not (tmp_path / "checkpoints").exists()


def _train_two_steps(make_cfg, model: str):
    return train(make_cfg([f"model={model}", "trainer.max_steps=2", "logger=csv", *NO_FID]))


def test_checkpoint_of_another_model_gets_a_clear_error(make_cfg, tmp_path):
    _train_two_steps(make_cfg, "mlp")
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    with pytest.raises(CheckpointError) as error:
        train(make_cfg(["model=dcgan", f"ckpt_path={last}", *NO_FID]))
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"ckpt_path={last} was trained with another model config: ")
    assert (
        "model.generator._target_='ganlab.networks.mlp.Generator' (here 'ganlab.networks.dcgan.Generator')" in message
    )
    assert last.read_bytes() == before  # nothing written over

    with pytest.raises(CheckpointError, match="model.generator.hidden_dim=256 \\(here 32\\)"):
        train(make_cfg(["model=mlp", "model.generator.hidden_dim=32", f"ckpt_path={last}", *NO_FID]))


def test_checkpoint_mismatch_names_the_real_culprit_before_settings_it_predates(make_cfg, tmp_path):
    """A checkpoint saved before some model settings existed lacks them; the setting that changed comes first."""
    _train_two_steps(make_cfg, "mlp")
    last = tmp_path / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=False)
    hparams = checkpoint["hyper_parameters"]
    predated = sorted(key for key, value in hparams.items() if value is not None and not isinstance(value, dict))
    assert len(predated) >= 4  # enough to fill the message's four slots
    for key in predated:
        del hparams[key]
    torch.save(checkpoint, last)
    with pytest.raises(CheckpointError) as error:
        train(make_cfg(["model=mlp", "model.generator.hidden_dim=32", f"ckpt_path={last}", *NO_FID]))
    detail = str(error.value).split("another model config: ", 1)[1]
    assert detail.startswith("model.generator.hidden_dim=256 (here 32); ")
    assert f"model.{predated[0]}=None" in detail


@pytest.mark.parametrize("problem", ["missing", "truncated"])
def test_bad_checkpoint_path_gets_a_clear_error(make_cfg, tmp_path, problem):
    path = tmp_path / "nowhere" / "last.ckpt"
    if problem == "truncated":
        _train_two_steps(make_cfg, "mlp")
        path = tmp_path / "checkpoints" / "last.ckpt"
        path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(
        CheckpointError,
        match=f"^ckpt_path={path}: "
        + ("no such checkpoint file" if problem == "missing" else "not a readable Lightning checkpoint"),
    ):
        train(make_cfg(["model=mlp", f"ckpt_path={path}", *NO_FID]))


def test_corrupt_idx_file_ends_in_one_line_naming_it(make_cfg, tmp_path, caplog):
    root = tmp_path / "mnist"
    shutil.copytree(BUNDLED_MNIST_SAMPLE, root)
    images = root / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:5000]))  # a download cut short
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit):
        run(make_cfg(["model=mlp", f"data.root={root}", *NO_FID]))
    (message,) = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert (
        message.startswith(f"{images}: truncated or corrupt IDX file") and "replace it with an intact copy" in message
    )


@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_unwritable_output_dir_fails_before_training(make_cfg, tmp_path, where):
    blocker = tmp_path / "outputs"
    blocker.write_text("a file where the outputs folder should be")
    output_dir = blocker / "runs" / "1" if where == "under a file" else "/proc/ganlab-test/run"
    cfg = make_cfg(["model=mlp", *NO_FID])
    cfg.paths.output_dir = str(output_dir)
    with pytest.raises(ConfigError, match=f"^cannot write the run's outputs to {output_dir}"):
        train(cfg)
    assert blocker.read_text() == "a file where the outputs folder should be"


def test_run_dir_records_config_commit_and_versions(make_cfg, tmp_path):
    _train_two_steps(make_cfg, "mlp")
    (record,) = list(yaml.safe_load_all((tmp_path / "provenance.yaml").read_text()))
    assert record["config"]["model"]["generator"]["_target_"] == "ganlab.networks.mlp.Generator"
    assert record["config"]["seed"] == 0
    assert len(record["git"]["commit"]) == 40 and isinstance(record["git"]["dirty"], bool)
    assert (
        record["versions"]["torch"] == torch.__version__.split("+")[0]
        or record["versions"]["torch"] == torch.__version__
    )
    assert record["versions"]["lightning"] and record["versions"]["hydra-core"]
    # A resume appends a record instead of replacing the first.
    train(
        make_cfg(
            [
                "model=mlp",
                "trainer.max_steps=3",
                "logger=csv",
                f"ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}",
                *NO_FID,
            ]
        )
    )
    records = list(yaml.safe_load_all((tmp_path / "provenance.yaml").read_text()))
    assert len(records) == 2 and records[1]["ckpt_path"].endswith("last.ckpt")


def test_same_seed_gives_identical_losses_over_50_steps(make_cfg, tmp_path):
    from test_resume import logged_losses  # noqa: PLC0415

    overrides = [
        "model=mlp",
        "trainer.max_steps=50",
        "logger=csv",
        "trainer.deterministic=true",
        "trainer.limit_val_batches=1",
        *NO_FID,
    ]
    train(make_cfg(overrides))
    first = logged_losses(tmp_path)
    shutil.move(tmp_path / "csv", tmp_path / "first_csv")
    train(make_cfg(overrides))
    assert len(first) == 50 and logged_losses(tmp_path) == first
    # ...and the check can tell: another seed gives other losses from the first step on.
    other_seed = make_cfg([*overrides, "seed=1", "trainer.max_steps=2"])
    other_seed.paths.output_dir = str(tmp_path / "seed1")
    train(other_seed)
    assert all(logged_losses(tmp_path / "seed1")[step] != first[step] for step in (0, 1))
