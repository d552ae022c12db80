"""No silently wrong runs, and errors at the edges in one line: a missing option of
any group, a key a schema lacks, impossible data settings, bad data, and every composition error (bad YAML,
unknown option, interpolation to a missing key) stop before training with one line and exit 1."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ganlab.config.checks import ConfigError, check_choices, check_config
from ganlab.data.idx import DataFileError
from ganlab.data.mnist import MNISTDataModule
from ganlab.data.sources import BUNDLED_MNIST_SAMPLE

from fault_catalogue import bad_labels, empty_test_split, train
from fault_catalogue import extra_conf as searchpath_with_broken_experiments

REPO = Path(__file__).resolve().parents[1]
QUIET = [
    "callbacks.progress_bar=null",
    "trainer.enable_model_summary=false",
    "data.download=false",
    "trainer.max_steps=1",
]


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The lines a user reads, less Lightning's and torch's warnings."""
    return [
        line for line in (result.stdout + result.stderr).splitlines() if "error" in line.lower() or "Traceback" in line
    ]


# ---- point 2: a missing option, a key no schema has -----------------------------------------------------
def test_missing_option_of_an_optional_group_lists_the_options():
    options = {"experiment": ["acgan", "wgan"], "model": ["dcgan", "mlp"]}.get
    check_choices({"experiment": "wgan", "model": "mlp", "hparams_search": None}, lambda g: options(g) or [])
    with pytest.raises(ConfigError, match="^experiment=wgn: no such option in conf/experiment/; options: acgan, wgan$"):
        check_choices({"experiment": "wgn"}, lambda g: options(g) or [])


def test_experiment_typo_stops_the_cli_before_the_run_dir(tmp_path):
    result = train(["experiment=dcgan_lsgn", f"hydra.run.dir={tmp_path / 'run'}", *QUIET], cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: experiment=dcgan_lsgn: no such option in conf/experiment/; options: acgan,")
    )
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "override, key",
    [
        ("+model.some_key=3", "model.some_key"),
        ("+data.batch_sise=3", "data.batch_sise"),
        ("+optimizer.generator.momentum=0.9", "optimizer.generator.momentum"),
    ],
)
def test_plus_key_into_a_schema_group_fails_like_a_typo(make_cfg, override, key):
    cfg = make_cfg(["model=mlp", override])
    with pytest.raises(ConfigError, match=f"^{key}: not a key of {key.rsplit('.', 1)[0]} "):
        check_config(cfg)


def test_plus_key_into_an_open_dict_is_still_allowed(make_cfg):
    check_config(make_cfg(["model=mlp", "+model.generator.extra=1"]))  # networks' configs: their signatures check them


# ---- point 2: data that cannot train --------------------------------------------------------------------
@pytest.mark.parametrize("value", [0.0, 1.0, 1.5, -0.1])
def test_val_fraction_outside_0_1_fails_before_training(make_cfg, value):
    with pytest.raises(ConfigError, match=f"^data.val_fraction={value} must be"):
        check_config(make_cfg(["model=mlp", f"data.val_fraction={value}"]))
    with pytest.raises(ConfigError, match="must be in \\(0, 1\\)"):
        MNISTDataModule(root=str(BUNDLED_MNIST_SAMPLE), download=False, val_fraction=value).setup()


def test_batch_larger_than_the_training_split_fails_naming_the_largest_that_fits():
    data = MNISTDataModule(root=str(BUNDLED_MNIST_SAMPLE), download=False, batch_size=100000)
    data.setup()
    with pytest.raises(
        ConfigError,
        match="^data.batch_size=100000 needs 100000 training images a step, but the training split has 8100; set data.batch_size to at most 8100$",
    ):
        data.train_dataloader()
    data = MNISTDataModule(root=str(BUNDLED_MNIST_SAMPLE), download=False, batch_size=3000, discriminator_steps=5)
    data.setup()
    with pytest.raises(ConfigError, match="x 5 discriminator steps needs 15000 .* at most 1620$"):
        data.train_dataloader()


def test_empty_split_fails(tmp_path):
    root = empty_test_split(tmp_path)
    with pytest.raises(DataFileError, match="the test split is empty"):
        MNISTDataModule(root=str(root), download=False).setup()


def test_labels_outside_the_classes_fail_naming_the_file(tmp_path):
    root = bad_labels(tmp_path, positions=(5, 17), value=11)
    with pytest.raises(
        DataFileError, match=f"^{root / 'train-labels-idx1-ubyte'}: 2 labels outside 0..9 \\(e.g. 11\\)"
    ):
        MNISTDataModule(root=str(root), download=False).setup()


def test_explicit_data_root_that_does_not_exist_stops_instead_of_falling_back(make_cfg, tmp_path):
    cfg = make_cfg(["model=mlp", f"data.root={tmp_path / 'nowhere'}"])
    assert cfg.data.fallback is False
    data = MNISTDataModule(
        **{k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items() if k != "_target_"}
    )
    data.prepare_data()
    with pytest.raises(
        DataFileError, match=f"^data.root={tmp_path / 'nowhere'} does not exist and nothing could be downloaded into it"
    ):
        data.setup()
    # The default data dir keeps its fallback (offline: the bundled sample, with a warning).
    assert make_cfg(["model=mlp"]).data.fallback is True


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "model.generator.image_shape=[1,32,32]",
            "model.generator.image_shape=[1, 32, 32] but the data's images are data.image_shape=[1, 28, 28]",
        ),
        ("data.image_shape=[28,28]", "data.image_shape=[28, 28] must be [channels, height, width]"),
    ],
)
def test_image_shape_the_model_cannot_take_fails(make_cfg, override, message):
    with pytest.raises(
        ConfigError, match=f"^{message}".replace("[", "\\[").replace("]", "\\]").replace("(", "\\(").replace(")", "\\)")
    ):
        check_config(make_cfg(["model=mlp", override]))


# ---- point 4: composition errors in one line, with file and line -------------------------------------------
@pytest.fixture
def extra_conf(tmp_path):
    return searchpath_with_broken_experiments(tmp_path)  # experiment=broken (bad YAML), experiment=dangling


MODEL_OPTIONS = sorted(path.stem for path in (Path(__file__).resolve().parents[1] / "conf" / "model").glob("*.yaml"))


def test_composition_errors_reach_the_user_as_one_line_with_file_and_line(tmp_path, extra_conf):
    run_dir = f"hydra.run.dir={tmp_path / 'run'}"
    cases = {
        "experiment=broken": f"error: {tmp_path}/conf/experiment/broken.yaml:4: invalid YAML",
        "experiment=dangling": f"{tmp_path}/conf/experiment/dangling.yaml:3: Interpolation key 'nowhere.dim' not found (key model.generator.latent_dim)",
        "model=stylegan": f"error: In 'train': Could not find 'model/stylegan'; Available options in 'model': {', '.join(MODEL_OPTIONS)}",
    }
    for override, expected in cases.items():
        result = train([extra_conf, override, run_dir, *QUIET], cwd=tmp_path)
        assert result.returncode == 1, result.stderr[-2000:]
        (line,) = error_lines(result)
        assert line.startswith(expected) or line.endswith(expected), line


def test_hydra_full_error_still_gives_the_whole_traceback(tmp_path, extra_conf):
    result = train([extra_conf, "experiment=broken", *QUIET], cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode == 1 and "Traceback (most recent call last)" in result.stderr and "yaml" in result.stderr


# ---- checks that run inside trainer.fit reach the user as one line too --------------------------------------
@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model=sgan", "data.labels_per_class=5000"], "data.labels_per_class=5000 but class 0 has only"),
        (["model=mlp", "data.batch_size=1"], "data.batch_size=1: a BatchNorm1d layer"),
        (["model=cgan", "data.labels_per_class=10"], "set data.labels_per_class=null"),
        (["model=cyclegan"], "train it with experiment=cyclegan"),
    ],
)
def test_a_check_inside_fit_stops_the_command_with_one_line(make_cfg, caplog, overrides, message):
    from ganlab.train import run

    with caplog.at_level("ERROR", logger="ganlab"), pytest.raises(SystemExit) as stop:
        run(make_cfg([*overrides, "trainer.max_steps=1", "callbacks.fid=null", "callbacks.best_fid_checkpoint=null"]))
    errors = [record.getMessage() for record in caplog.records if record.levelno >= 40]
    assert stop.value.code == 1 and len(errors) == 1 and "\n" not in errors[0], errors
    assert message in errors[0]
