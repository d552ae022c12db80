"""The catalogue of faults a user can meet, each run as a real ``python train.py`` subprocess: a typo in a
config, bad data, a damaged checkpoint, a full disk, a signal, a second run on one run dir, a DDP rank that dies
or hangs. Each entry says what the user did, how the run must end (exit status, the one line to read, what is
kept), and how to cause it. ``test_fault_catalogue.py`` runs every entry (slow: 32 subprocesses) and
``bench/faults.py`` renders the same runs as docs/faults.md's table; ``test_faults.py`` checks the same guards
in process, with the corruption helpers below.

The outcome says what was kept, checked, not assumed: checkpoints compared byte for byte, run dirs looked for.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganlab.data.idx import read_idx, write_idx
from ganlab.data.sources import BUNDLED_MNIST_SAMPLE

from families import run_script

REPO = Path(__file__).resolve().parents[1]

QUICK = [
    "model=mlp",
    "logger=csv",
    "callbacks.progress_bar=null",
    "trainer.enable_model_summary=false",
    "data.download=false",
    "data.batch_size=16",
    "++callbacks.fid=null",
    "++callbacks.best_fid_checkpoint=null",
    "callbacks.sample_grid=null",
    "trainer.limit_val_batches=1",
    "callbacks.model_checkpoint.every_n_train_steps=1",
]

# A train.py that runs FAULT_INJECT (Python) first: a full disk, a rank that hangs. The product has no hooks.
INJECT = textwrap.dedent(f"""
    import os, hydra
    exec(os.environ.get("FAULT_INJECT", ""))
    from ganlab.train import run

    @hydra.main(version_base="1.3", config_path={str(REPO / "conf")!r}, config_name="train")
    def main(cfg):
        return run(cfg)

    main()
""")


@dataclass
class Outcome:
    returncode: int
    output: str
    kept: str


@dataclass
class Fault:
    name: str
    category: str
    what: str  # what the user did, as a command line or an event
    run: Callable[[Path], Outcome]
    reads: str  # what the one line the user reads holds (user_line of the output)
    keeps: str  # what the outcome's "kept" holds
    expect_exit: tuple[int, ...] = (1,)

    def check(self, outcome: Outcome) -> list[str]:
        """What is wrong with this outcome ([] when the fault ended as it must)."""
        problems = []
        if outcome.returncode not in self.expect_exit:
            problems.append(f"exit {outcome.returncode}, expected {self.expect_exit}")
        if "Traceback" in outcome.output:
            problems.append("a traceback was printed")
        if self.reads not in user_line(outcome.output):
            problems.append(f"the user reads {user_line(outcome.output)!r}, without {self.reads!r}")
        if self.keeps not in outcome.kept:
            problems.append(f"kept: {outcome.kept!r}, without {self.keeps!r}")
        return problems


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def train(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, script: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """``python train.py <args>`` (or ``script``, a train.py that injects a fault) in ``cwd``."""
    return run_script(script or "train.py", *args, cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})})


def start(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, script: Path | None = None
) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script or REPO / "train.py"), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def wait_for(predicate: Callable[[], bool], process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting: {process.communicate()[0][-2000:]}")
        time.sleep(0.2)


def last_step(run_dir: Path) -> int:
    last = run_dir / "checkpoints" / "last.ckpt"
    try:
        return torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    except Exception:  # noqa: BLE001  (not written yet)
        return -1


# ---- the faults ---------------------------------------------------------------------------------------------------
def config_fault(args: list[str]) -> Callable[[Path], Outcome]:
    def run(tmp: Path) -> Outcome:
        given = {a.split("=")[0] for a in args}
        run_dir = Path(next((a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")), tmp / "run"))
        defaults = [f"hydra.run.dir={run_dir}", "trainer.max_steps=2", *QUICK]
        result = train([*args, *[a for a in defaults if a.split("=")[0] not in given]], tmp)
        kept = (
            "nothing started: no run dir"
            if not run_dir.exists()
            else f"run dir {sorted(p.name for p in run_dir.iterdir())}"
        )
        return Outcome(result.returncode, result.stdout + result.stderr, kept)

    return run


def prepared_run(tmp: Path, steps: int = 3) -> Path:
    """A finished short run (a checkpoint each step) to damage."""
    run_dir = tmp / "base"
    result = train([*QUICK, f"trainer.max_steps={steps}", f"hydra.run.dir={run_dir}"], tmp)
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


def checkpoint_fault(damage: Callable[[Path], str], extra: list[str] = ()) -> Callable[[Path], Outcome]:
    def run(tmp: Path) -> Outcome:
        base = prepared_run(tmp)
        ckpt = damage(base)
        before = {p.name: sha(p) for p in (base / "checkpoints").glob("*.ckpt")}
        result = train([*QUICK, "trainer.max_steps=5", f"ckpt_path={ckpt}", *extra], tmp)
        after = {p.name: sha(p) for p in (base / "checkpoints").glob("*.ckpt")}
        changed = [name for name in before if after.get(name) != before[name]]
        kept = (
            "every checkpoint byte-identical"
            if not changed
            else f"checkpoints rewritten by the resumed run: {', '.join(sorted(changed))}"
        )
        if result.returncode == 0:
            kept = f"resumed and finished at step {last_step(base)}; the damaged file was replaced by the new last.ckpt"
        return Outcome(result.returncode, result.stdout + result.stderr, kept)

    return run


def data_fault(prepare: Callable[[Path], Path], extra: list[str] = ()) -> Callable[[Path], Outcome]:
    def run(tmp: Path) -> Outcome:
        root = prepare(tmp)
        before = {p.name: sha(p) for p in root.iterdir()} if root.is_dir() else {}
        run_dir = tmp / "run"
        result = train([*QUICK, "trainer.max_steps=2", f"data.root={root}", f"hydra.run.dir={run_dir}", *extra], tmp)
        after = {p.name: sha(p) for p in root.iterdir()} if root.is_dir() else {}
        kept = "data files untouched" if before == after else "data files changed"
        kept += "; no checkpoint written" if not (run_dir / "checkpoints").exists() else "; checkpoints written"
        return Outcome(result.returncode, result.stdout + result.stderr, kept)

    return run


def sample_copy(tmp: Path) -> Path:
    root = tmp / "mnist"
    shutil.copytree(BUNDLED_MNIST_SAMPLE, root)
    return root


def bad_labels(tmp: Path, positions: tuple[int, ...] = (3,), value: int = 12) -> Path:
    """A copy of the sample whose training labels hold ``value`` (outside 0..9) at ``positions``."""
    root = sample_copy(tmp)
    labels = read_idx(root / "train-labels-idx1-ubyte.gz").numpy().copy()
    labels[list(positions)] = value
    (root / "train-labels-idx1-ubyte.gz").unlink()
    write_idx(root / "train-labels-idx1-ubyte", labels)
    return root


def truncated_images(tmp: Path) -> Path:
    import gzip

    root = sample_copy(tmp)
    images = root / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:5000]))
    return root


def empty_test_split(tmp: Path) -> Path:
    root = sample_copy(tmp)
    for stem, array in [("t10k-images-idx3-ubyte", np.zeros((0, 28, 28))), ("t10k-labels-idx1-ubyte", np.zeros((0,)))]:
        (root / f"{stem}.gz").unlink()
        write_idx(root / stem, array)
    return root


def missing_file(tmp: Path) -> Path:
    root = sample_copy(tmp)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    return root


def a_file(tmp: Path) -> Path:
    path = tmp / "mnist.txt"
    path.write_text("not a folder")
    return path


def extra_conf(tmp: Path) -> str:
    conf = tmp / "conf" / "experiment"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "broken.yaml").write_text("# @package _global_\nmodel:\n  latent_dim: [1, 2\ntrainer:\n  max_steps: 3\n")
    (conf / "dangling.yaml").write_text("# @package _global_\nmodel:\n  latent_dim: ${nowhere.dim}\n")
    return f"hydra.searchpath=[file://{tmp / 'conf'}]"


def searchpath_fault(experiment: str) -> Callable[[Path], Outcome]:
    def run(tmp: Path) -> Outcome:
        return config_fault([extra_conf(tmp), f"experiment={experiment}"])(tmp)

    return run


def full_disk(tmp: Path) -> Outcome:
    base = prepared_run(tmp)
    last = base / "checkpoints" / "last.ckpt"
    before = sha(last)
    script = tmp / "train_inject.py"
    script.write_text(INJECT)
    inject = textwrap.dedent("""
        import errno
        from ganlab.run.checkpoints import AtomicCheckpointIO
        def _full(f, data):
            f.write(data[:4096]); raise OSError(errno.ENOSPC, "No space left on device")
        AtomicCheckpointIO._write = staticmethod(_full)
    """)
    result = train(
        [*QUICK, "trainer.max_steps=6", f"ckpt_path={last}"], tmp, env={"FAULT_INJECT": inject}, script=script
    )
    stray = list(last.parent.glob(".*tmp*"))
    kept = ("last.ckpt byte-identical to before the write" if sha(last) == before else "last.ckpt CHANGED") + (
        "; no temporary file left" if not stray else "; temporary files left"
    )
    return Outcome(result.returncode, result.stdout + result.stderr, kept)


def unwritable(tmp: Path) -> Outcome:
    return config_fault(["hydra.run.dir=/proc/ganlab/run"])(tmp)


def signal_fault(signum: int) -> Callable[[Path], Outcome]:
    def run(tmp: Path) -> Outcome:
        run_dir = tmp / "run"
        process = start([*QUICK, "trainer.max_steps=100000", f"hydra.run.dir={run_dir}"], tmp)
        wait_for(lambda: last_step(run_dir) >= 2, process)
        process.send_signal(signum)
        output = process.communicate(timeout=300)[0]
        step = last_step(run_dir)
        resumed = train(
            [*QUICK, f"trainer.max_steps={step + 2}", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"], tmp
        )
        kept = f"checkpoints/last.ckpt at step {step}; resuming from it: exit {resumed.returncode}, step {last_step(run_dir)}"
        return Outcome(process.returncode, output, kept)

    return run


def sigkill(tmp: Path) -> Outcome:
    run_dir = tmp / "run"
    process = start([*QUICK, "trainer.max_steps=100000", f"hydra.run.dir={run_dir}"], tmp)
    wait_for(lambda: last_step(run_dir) >= 3, process)
    process.send_signal(signal.SIGKILL)
    output = process.communicate(timeout=60)[0]
    step = last_step(run_dir)
    resumed = train(
        [*QUICK, f"trainer.max_steps={step + 2}", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"], tmp
    )
    kept = f"checkpoints/last.ckpt whole (step {step}); resuming from it: exit {resumed.returncode}, step {last_step(run_dir)}, no stale lock"
    return Outcome(process.returncode, output + "(killed: no message is possible)", kept)


def second_run(tmp: Path) -> Outcome:
    run_dir = tmp / "run"
    first = start([*QUICK, "trainer.max_steps=100000", f"hydra.run.dir={run_dir}"], tmp)
    try:
        wait_for(lambda: last_step(run_dir) >= 1, first)
        before = sha(run_dir / "provenance.yaml")
        result = train([*QUICK, "trainer.max_steps=3", f"hydra.run.dir={run_dir}"], tmp)
        kept = (
            "the first run goes on untouched"
            + ("" if first.poll() is None else " (but it ENDED)")
            + ("; provenance.yaml unchanged" if sha(run_dir / "provenance.yaml") == before else "")
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    return Outcome(result.returncode, result.stdout + result.stderr, kept)


def killed_rank(tmp: Path) -> Outcome:
    run_dir = tmp / "run"
    process = start(["accelerator=ddp_cpu", *QUICK, "trainer.max_steps=100000", f"hydra.run.dir={run_dir}"], tmp)
    beat = run_dir / ".ranks" / "1"
    wait_for(
        lambda: beat.exists() and len(beat.read_text().split()) == 2 and int(beat.read_text().split()[0]) >= 2, process
    )
    os.kill(int(beat.read_text().split()[1]), signal.SIGKILL)
    output = process.communicate(timeout=300)[0]
    return Outcome(process.returncode, output, f"checkpoints/last.ckpt at step {last_step(run_dir)} (resumable)")


def hung_rank(tmp: Path) -> Outcome:
    script = tmp / "train_inject.py"
    script.write_text(INJECT)
    inject = textwrap.dedent("""
        import time, lightning as L
        from ganlab.callbacks.step_seed import StepSeed
        _start = StepSeed.on_train_batch_start
        def _hang(self, trainer, *args):
            if trainer.global_rank == 1 and trainer.global_step >= 2:
                time.sleep(3600)
            return _start(self, trainer, *args)
        StepSeed.on_train_batch_start = _hang
    """)
    run_dir = tmp / "run"
    result = train(
        [
            "accelerator=ddp_cpu",
            *QUICK,
            "trainer.max_steps=100",
            "callbacks.rank_watchdog.timeout_s=15",
            "callbacks.rank_watchdog.grace_s=30",
            f"hydra.run.dir={run_dir}",
        ],
        tmp,
        env={"FAULT_INJECT": inject},
        script=script,
    )
    return Outcome(
        result.returncode,
        result.stdout + result.stderr,
        f"checkpoints/last.ckpt at step {last_step(run_dir)} (resumable)",
    )


def other_model(base: Path) -> str:
    return str(base / "checkpoints" / "last.ckpt")


def truncate(name: str) -> Callable[[Path], str]:
    def damage(base: Path) -> str:
        path = base / "checkpoints" / name
        path.write_bytes(path.read_bytes()[:3000])
        return str(path)

    return damage


NOTHING_STARTED = "nothing started: no run dir"
NO_CHECKPOINT = "run dir ['.hydra', 'result.json', 'train.log']"  # composed, stopped before training: no checkpoint
DATA_KEPT = "data files untouched; no checkpoint written"
CHECKPOINTS_KEPT = "every checkpoint byte-identical"

FAULTS = [
    Fault(
        "experiment typo",
        "config",
        "experiment=dcgan_lsgn",
        config_fault(["experiment=dcgan_lsgn"]),
        "error: experiment=dcgan_lsgn: no such option in conf/experiment/; options: acgan,",
        NOTHING_STARTED,
    ),
    Fault(
        "hparams_search typo",
        "config",
        "hparams_search=optun",
        config_fault(["hparams_search=optun"]),
        "hparams_search=optun: no such option in conf/hparams_search/; options: optuna",
        NOTHING_STARTED,
    ),
    Fault(
        "unknown model",
        "config",
        "model=stylegan",
        config_fault(["model=stylegan"]),
        "Could not find 'model/stylegan'; Available options in 'model': acgan,",
        NOTHING_STARTED,
    ),
    Fault(
        "misspelled key",
        "config",
        "data.batch_sise=32",
        config_fault(["data.batch_sise=32"]),
        "Key 'batch_sise' not in",
        NOTHING_STARTED,
    ),
    Fault(
        "added key a schema lacks",
        "config",
        "+model.some_key=3",
        config_fault(["+model.some_key=3"]),
        "model.some_key: not a key of model",
        NOTHING_STARTED,
    ),
    Fault(
        "wrong type",
        "config",
        "data.batch_size=abc",
        config_fault(["data.batch_size=abc"]),
        "Value 'abc' of type 'str' could not be converted to Integer",
        NOTHING_STARTED,
    ),
    Fault(
        "bad override syntax",
        "config",
        "'data.batch_size=['",
        config_fault(["data.batch_size=["]),
        "no viable alternative at input '['",
        NOTHING_STARTED,
    ),
    Fault(
        "out-of-range value",
        "config",
        "optimizer.generator.lr=0",
        config_fault(["optimizer.generator.lr=0"]),
        "optimizer.generator.lr=0.0 must be > 0.0; set optimizer.generator.lr to a value in range",
        NO_CHECKPOINT,
    ),
    Fault(
        "validation fraction outside (0, 1)",
        "config",
        "data.val_fraction=1.5",
        config_fault(["data.val_fraction=1.5"]),
        "data.val_fraction=1.5 must be < 1.0",
        NO_CHECKPOINT,
    ),
    Fault(
        "broken YAML in an experiment file",
        "config",
        "experiment=broken (a `[` never closed)",
        searchpath_fault("broken"),
        "/conf/experiment/broken.yaml:4: invalid YAML",
        NOTHING_STARTED,
    ),
    Fault(
        "interpolation to a missing key",
        "config",
        "experiment=dangling (`${nowhere.dim}`)",
        searchpath_fault("dangling"),
        "/conf/experiment/dangling.yaml:3: Interpolation key 'nowhere.dim' not found",
        NO_CHECKPOINT,
    ),
    Fault(
        "image shape the networks cannot take",
        "config",
        "data.image_shape=[1,30,30] (dcgan)",
        config_fault(["model=dcgan", "data.image_shape=[1,30,30]"]),
        "dcgan needs image height and width divisible by 4",
        NO_CHECKPOINT,
    ),
    Fault(
        "network built for other images",
        "config",
        "model.generator.image_shape=[1,32,32]",
        config_fault(["model.generator.image_shape=[1,32,32]"]),
        "model.generator.image_shape=[1, 32, 32] but the data's images are data.image_shape=[1, 28, 28]",
        NO_CHECKPOINT,
    ),
    Fault(
        "unwritable output dir",
        "config",
        "hydra.run.dir=/proc/ganlab/run",
        unwritable,
        "cannot write the run's outputs to /proc/ganlab/run",
        NOTHING_STARTED,
    ),
    Fault(
        "batch larger than the training split",
        "data",
        "data.batch_size=100000",
        config_fault(["data.batch_size=100000", f"data.root={BUNDLED_MNIST_SAMPLE}"]),
        "data.batch_size=100000 needs 100000 training images a step, but the training split has 8100",
        "run dir [",
    ),
    Fault(
        "explicit data.root that does not exist",
        "data",
        "data.root=/nonexistent/mnist",
        config_fault(["data.root=/nonexistent/mnist"]),
        "data.root=/nonexistent/mnist does not exist and nothing could be downloaded into it",
        "run dir [",
    ),
    Fault(
        "data.root is a file", "data", "data.root=<a file>", data_fault(a_file), "is a file, not a folder", DATA_KEPT
    ),
    Fault(
        "labels outside 0..9",
        "data",
        "a labels file holding a 12",
        data_fault(bad_labels),
        "1 labels outside 0..9 (e.g. 12)",
        DATA_KEPT,
    ),
    Fault(
        "truncated IDX file",
        "data",
        "train images cut short",
        data_fault(truncated_images),
        "truncated or corrupt IDX file",
        DATA_KEPT,
    ),
    Fault(
        "one of the four IDX files missing",
        "data",
        "t10k labels deleted",
        data_fault(missing_file),
        "holds only some of the MNIST IDX files",
        DATA_KEPT,
    ),
    Fault(
        "empty split",
        "data",
        "a test file of 0 images",
        data_fault(empty_test_split),
        "the test split is empty",
        DATA_KEPT,
    ),
    Fault(
        "checkpoint path that does not exist",
        "checkpoint",
        "ckpt_path=<dir>/nowhere.ckpt",
        checkpoint_fault(lambda base: str(base / "nowhere.ckpt")),
        "nowhere.ckpt: no such checkpoint file",
        CHECKPOINTS_KEPT,
    ),
    Fault(
        "truncated step checkpoint",
        "checkpoint",
        "ckpt_path=<run>/checkpoints/step_0000002.ckpt, cut short",
        checkpoint_fault(truncate("step_0000002.ckpt")),
        "step_0000002.ckpt: not a readable Lightning checkpoint",
        CHECKPOINTS_KEPT,
    ),
    Fault(
        "checkpoint of another model",
        "checkpoint",
        "ckpt_path=<mlp run> model=dcgan",
        checkpoint_fault(other_model, ["model=dcgan"]),
        "was trained with another model config",
        CHECKPOINTS_KEPT,
    ),
    Fault(
        "damaged last.ckpt",
        "checkpoint",
        "ckpt_path=<run>/checkpoints/last.ckpt, cut short",
        checkpoint_fault(truncate("last.ckpt")),
        "last.ckpt is damaged (RuntimeError): resuming from",
        "resumed and finished at step 5",
        expect_exit=(0,),
    ),
    Fault(
        "full disk during a checkpoint write",
        "disk",
        "ENOSPC on write (simulated in the file write)",
        full_disk,
        "the disk is full; kept no partial",
        "last.ckpt byte-identical to before the write; no temporary file left",
    ),
    Fault(
        "SIGTERM mid-run",
        "signal",
        "kill -TERM <pid> at step >= 2",
        signal_fault(signal.SIGTERM),
        "stopped by SIGTERM after step",
        "resuming from it: exit 0",
        expect_exit=(128 + 15,),
    ),
    Fault(
        "Ctrl-C mid-run",
        "signal",
        "SIGINT at step >= 2",
        signal_fault(signal.SIGINT),
        "stopped by SIGINT after step",
        "resuming from it: exit 0",
        expect_exit=(128 + 2,),
    ),
    Fault(
        "SIGKILL mid-run",
        "signal",
        "kill -KILL <pid> at step >= 3, then resume",
        sigkill,
        "(killed: no message is possible)",
        "resuming from it: exit 0",
        expect_exit=(-9,),
    ),
    Fault(
        "second run on the same run dir",
        "run dir",
        "the same hydra.run.dir while the first runs",
        second_run,
        "is in use by pid",
        "the first run goes on untouched; provenance.yaml unchanged",
    ),
    Fault(
        "a DDP rank killed",
        "ddp",
        "kill -KILL <rank 1 pid> (accelerator=ddp_cpu)",
        killed_rank,
        "died (exit code -9)",
        "checkpoints/last.ckpt at step",
    ),
    Fault(
        "a DDP rank that hangs",
        "ddp",
        "rank 1 sleeps at step 2 (accelerator=ddp_cpu)",
        hung_rank,
        "DDP: rank 1 stopped answering",
        "checkpoints/last.ckpt at step",
    ),
]


def user_line(output: str) -> str:
    """The line a user reads: the last error line (Hydra's `error:` or our log's ERROR), else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error:") or "[ERROR]" in line or "[WARNING] - " in line and "damaged" in line:
            return re.sub(r"^\[[^]]*\]\[[^]]*\]\[(ERROR|WARNING)\] - ", "", line)
    return lines[-1] if lines else ""
