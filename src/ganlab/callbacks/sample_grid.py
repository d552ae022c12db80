"""Sample grids: what the generator makes for a fixed noise batch, as PNGs and in TensorBoard."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import save_image

ANIMATION = "progress.gif"


def write_animation(samples_dir: Path, frame_ms: int = 400, last_frame_ms: int = 2000) -> Path | None:
    """``samples/progress.gif`` from every ``samples/step_*.png`` (so a resumed run's grids join the earlier
    ones), with its step written above each frame. None when there is no grid."""
    grids = sorted(Path(samples_dir).glob("step_*.png"))
    if not grids:
        return None
    font = ImageFont.load_default()
    frames = []
    for path in grids:
        grid = Image.open(path).convert("RGB")
        frame = Image.new("RGB", (grid.width, grid.height + 16), "white")
        frame.paste(grid, (0, 16))
        ImageDraw.Draw(frame).text((4, 2), f"step {int(path.stem.removeprefix('step_')):,}", fill="black", font=font)
        frames.append(frame.quantize(colors=256))
    out = Path(samples_dir) / ANIMATION
    durations = [frame_ms] * (len(frames) - 1) + [last_frame_ms]
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return out


class SampleGrid(L.Callback):
    """At the end of every ``every_n_epochs`` epochs (and of training), G's images for the module's fixed noise:
    a PNG under ``<run dir>/samples/`` for any logger, and an image in TensorBoard when it is a logger. At the end
    of training, ``samples/progress.gif`` animates all the grids of the run dir."""

    def __init__(self, every_n_epochs: int = 1, nrow: int = 8):  # nrow: where the family leaves it open
        self.every_n_epochs = every_n_epochs
        self.nrow = nrow
        self._last_logged_step = -1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.log_grid(trainer, pl_module)  # once a step: a no-op after the validation's grid

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Drawn here when there is a validation: callbacks.ema has swapped the averaged weights in for it.
        if not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.log_grid(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.log_grid(trainer, pl_module)  # runs that stop on max_steps mid-epoch still get their final grid
        if trainer.is_global_zero:
            write_animation(Path(trainer.default_root_dir) / "samples")

    def log_grid(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or step == self._last_logged_step:
            return
        self._last_logged_step = step
        grid = pl_module.evaluator().sample_grid(trainer.datamodule, self.nrow)  # the family's own grid
        samples_dir = Path(trainer.default_root_dir) / "samples"
        samples_dir.mkdir(parents=True, exist_ok=True)
        image = grid.tile()  # (3, H', W') in [0, 1]
        save_image(image, samples_dir / f"step_{step:07d}.png")
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples", image, global_step=step)
                if grid.text is not None:  # StackGAN: the captions of the rows
                    logger.experiment.add_text("samples/captions", grid.text, global_step=step)
