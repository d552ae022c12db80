"""InfoGAN's categorical code against the digit classes, beside the paper: a table over seeds.

    python bench/infogan.py                               # experiment=infogan, seeds 0 1 2, its preset's budget
    python bench/infogan.py --seeds 0 --overrides model.q_phase=generator trainer.max_steps=2000

Each row is ``python train.py experiment=infogan <overrides> seed=<s>`` then ``python evaluate.py
ckpt_path=<run>/checkpoints/last.ckpt num_samples=10000``, run in this process through ``train(cfg)`` and
``evaluate(cfg)``: 1,000 images a code value, read by the committed MNIST classifier, the error after the best
one-to-one matching of code values to classes (``ganlab.metrics.categorical_code``). Runs land in
``outputs/bench/infogan/``; ``--score-existing`` scores runs already there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from quality import compose_app  # noqa: E402  (bench/ on the path first)

from ganlab.evaluate import evaluate  # noqa: E402
from ganlab.run.console import quiet_library_messages  # noqa: E402
from ganlab.train import train  # noqa: E402

PAPER = "InfoGAN paper (Chen et al. 2016, sec. 7.1): about 5% error on MNIST"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--overrides", nargs="*", default=[], help="train.py overrides after experiment=infogan")
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench" / "infogan")
    parser.add_argument("--score-existing", action="store_true", help="score the runs under --out, train none")
    args = parser.parse_args()
    quiet_library_messages()
    overrides = ["experiment=infogan", "data.download=false", "callbacks.progress_bar=null", *args.overrides]
    rows = []
    for seed in args.seeds:
        run_dir = args.out / "_".join([f"seed{seed}", *(o.replace("=", "-") for o in args.overrides)])
        seconds = float("nan")
        if not args.score_existing:
            start = time.perf_counter()
            train(compose_app("train", [*overrides, f"seed={seed}"], run_dir))
            seconds = time.perf_counter() - start
        ckpt = run_dir / "checkpoints" / "last.ckpt"
        scored = evaluate(
            compose_app("evaluate", [f"ckpt_path={ckpt}", f"num_samples={args.num_samples}"], run_dir / "evaluate")
        )
        rows.append((seed, scored, seconds))
        print(f"python train.py {' '.join(overrides)} seed={seed}  # then evaluate.py ckpt_path={ckpt}", flush=True)
    print(f"\n{PAPER}\nexperiment=infogan {' '.join(args.overrides)}\n")
    print("| seed | updates | code error | classes of codes 0-9 | FID | recall | train s |")
    print("|---|---|---|---|---|---|---|")
    for seed, scored, seconds in rows:
        matching = "".join(str(c) for c in scored["code_matching"])
        print(
            f"| {seed} | {scored['global_step']:,} | {scored['code_error']:.1%} | {matching} | {scored['fid']:.1f} "
            f"| {scored['recall']:.2f} | {seconds:.0f} |"
        )
    errors = [scored["code_error"] for _, scored, _ in rows]
    spread = f" ({min(errors):.1%} to {max(errors):.1%})" if len(errors) > 1 else ""
    print(f"\nmean code error {statistics.mean(errors):.1%}{spread} over {len(errors)} seed(s)")


if __name__ == "__main__":
    main()
