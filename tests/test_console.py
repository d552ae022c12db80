"""What a user sees: a real short ``python train.py`` prints no library noise, a progress bar in generator updates
and a closing summary; ``verbose=true`` brings the library messages back; ``samples/progress.gif`` animates the
run's grids."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image

from ganlab.callbacks.sample_grid import write_animation
from ganlab.run.console import silence_known_warnings

from families import run_script

# Two epochs of 3 batches, each validated with FID on 200 samples: every kind of output, in a few seconds.
SHORT = [
    "model=mlp",
    "trainer.max_steps=6",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "data.batch_size=16",
    "data.download=false",
    "callbacks.fid.num_samples=200",
    "trainer.log_every_n_steps=1",
]

NOISE = [
    "💡 Tip",
    "litlogger",
    "litmodels",
    "was configured so 100%",
    "LeafSpec",
    "will save all extracted features",
    "def training_step",
    "Using ModelCheckpoint with manual optimization",
    "could not find the monitored key",
    "Epoch 1/-2",
    "Total FLOPs",  # Lightning's model summary table: the Training line gives the sizes
    "Modules in train mode",
    "/-2",
    "GPU available: False",
    "TPU available",
    "Seed set to",
    "`Trainer.fit` stopped",
]


def run_script_ok(tmp_path: Path, script: str, *overrides: str) -> str:
    result = run_script(script, *overrides, cwd=tmp_path, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


def run_train(tmp_path: Path, *overrides: str) -> str:
    return run_script_ok(tmp_path, "train.py", *SHORT, f"hydra.run.dir={tmp_path / 'run'}", *overrides)


def run_evaluate(tmp_path: Path, *overrides: str) -> str:
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    scoring = ["num_samples=200", "metrics.kid_subset_size=100", "data=mnist", "data.download=false"]
    return run_script_ok(tmp_path, "evaluate.py", f"ckpt_path={checkpoint}", *scoring, *overrides)


def test_default_run_prints_no_library_noise_and_ends_with_a_summary(tmp_path):
    output = run_train(tmp_path)
    found = [noise for noise in NOISE if noise in output]
    assert not found, f"noise {found} in:\n{output}"
    run = tmp_path / "run"
    assert "step 6/6" in output  # the bar counts generator updates
    assert "(G 228K, D 201K parameters)" in output  # the sizes, in place of Lightning's summary table
    summary = output[output.index("Done: 6 generator updates") :]
    assert "val/fid:" in summary and "final" in summary and "best" in summary
    assert str(run / "samples" / "step_0000006.png") in summary
    assert str(run / "checkpoints") in summary and "last.ckpt" in summary and "best_fid.ckpt" in summary
    assert f"tensorboard --logdir {run}" in summary
    # The run's real warnings stay: the bundled-sample notice (no MNIST under data/) is one a user can act on.
    assert "bundled sample" in output
    gif = Image.open(run / "samples" / "progress.gif")
    assert gif.n_frames == len(list((run / "samples").glob("step_*.png"))) >= 2
    scored = run_evaluate(tmp_path, f"hydra.run.dir={tmp_path / 'evaluate'}")  # evaluate.py is as quiet
    found = [noise for noise in NOISE if noise in scored]
    assert not found and "FID" in scored, f"noise {found} in:\n{scored}"


def test_verbose_brings_the_library_messages_back(tmp_path):
    output = run_train(
        tmp_path, "verbose=true", "trainer.max_steps=2", "++callbacks.fid=null", "++callbacks.best_fid_checkpoint=null"
    )
    assert "💡 Tip" in output and "was configured so 100%" in output
    scored = run_evaluate(tmp_path, "verbose=true", f"hydra.run.dir={tmp_path / 'evaluate'}")
    assert "will save all extracted features" in scored  # torchmetrics' KID notice, silenced by default


def test_only_the_known_warnings_are_silenced():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_known_warnings()
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, stacklevel=1)
        warnings.warn("some other deprecation", FutureWarning, stacklevel=1)
        warnings.warn(
            "`isinstance(treespec, LeafSpec)` is deprecated, use ...", UserWarning, stacklevel=1
        )  # another category
    assert [str(w.message) for w in caught] == [
        "some other deprecation",
        "`isinstance(treespec, LeafSpec)` is deprecated, use ...",
    ]


def test_animation_is_rebuilt_from_every_grid_of_the_run_dir(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    for step in (5, 10):  # the grids of a first run
        Image.new("RGB", (64, 64), (step * 20, 0, 0)).save(samples / f"step_{step:07d}.png")
    assert Image.open(write_animation(samples)).n_frames == 2
    Image.new("RGB", (64, 64), "blue").save(samples / "step_0000015.png")  # a resumed run's grid
    gif = Image.open(write_animation(samples))
    assert gif.n_frames == 3 and gif.size == (64, 80)  # a strip for the step above each frame
    assert write_animation(tmp_path / "empty") is None
