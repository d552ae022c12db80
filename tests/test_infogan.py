"""InfoGAN: what is special to the family (the contract of every family is in test_families.py): the code-to-
class matching is exact, Q has its own optimizer in the phase it is given, the grid and evaluate.py read codes."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from ganlab.evaluate import evaluate
from ganlab.metrics.categorical_code import best_matching_error
from ganlab.models.infogan import InfoGAN
from ganlab.train import train

from conftest import app_config
from families import FAMILIES, NO_FID


def test_a_permuted_identity_matches_exactly():
    permutation = [3, 7, 0, 9, 1, 4, 8, 2, 6, 5]
    confusion = torch.zeros(10, 10)
    confusion[torch.arange(10), torch.tensor(permutation)] = 100
    error, matching = best_matching_error(confusion)
    assert error == 0 and matching == permutation


def test_a_known_confusion_gives_the_hand_computed_error():
    # Codes 0 and 1 both draw mostly 0s: the best matching gives 0 to code 0 and 1 to code 1 (6 + 3 + 9 = 18
    # matched of 30, against 5 + 3 + 9 = 17 the other way round): error 12 / 30.
    error, matching = best_matching_error(torch.tensor([[6, 3, 1], [5, 3, 2], [0, 1, 9]]))
    assert matching == [0, 1, 2] and abs(error - 12 / 30) < 1e-12


def test_matching_agrees_with_brute_force():
    confusion = torch.randint(0, 50, (6, 6), generator=torch.Generator().manual_seed(0))
    error, matching = best_matching_error(confusion)
    best = max(itertools.permutations(range(6)), key=lambda p: sum(confusion[i, p[i]].item() for i in range(6)))
    assert sorted(matching) == list(range(6))
    assert abs(error - (1 - sum(confusion[i, best[i]].item() for i in range(6)) / confusion.sum().item())) < 1e-12


@pytest.mark.parametrize("q_phase", ["discriminator", "generator"])
def test_q_has_its_own_optimizer_stepping_in_the_phase_it_is_given(make_cfg, tmp_path, q_phase):
    cfg = make_cfg(FAMILIES["infogan"].overrides(f"model.q_phase={q_phase}", "trainer.max_steps=3", *NO_FID))
    result = train(cfg)
    gan, trainer = result["model"], result["trainer"]
    assert isinstance(gan, InfoGAN) and len(trainer.optimizers) == 3
    d_opt, g_opt, q_opt = trainer.optimizers
    q_params = {id(p) for p in gan.q_head.parameters()}
    assert {id(p) for group in q_opt.param_groups for p in group["params"]} == q_params
    assert q_opt.param_groups[0]["lr"] == (d_opt if q_phase == "discriminator" else g_opt).param_groups[0]["lr"]
    assert all(int(state["step"]) == 3 for state in q_opt.state.values())  # one Q step per generator update
    metrics = result["metrics"]
    assert ("loss/d_info_cat" in metrics) == (q_phase == "discriminator") and "loss/g_info_cat" in metrics


def test_the_grid_has_a_row_per_code_value_and_evaluate_scores_the_code(make_cfg, tmp_path):
    train(make_cfg(FAMILIES["infogan"].overrides("trainer.max_steps=2", *NO_FID)))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    gan = InfoGAN.load_from_checkpoint(ckpt, map_location="cpu")
    _, categories, continuous = gan.split_latent(gan.fixed_noise)
    assert categories.tolist() == [i for i in range(10) for _ in range(3)]  # grid_columns=3
    assert continuous[:3, 0].tolist() == [-1.0, 0.0, 1.0] and gan.evaluator().sample_grid(None).nrow == 3
    results = evaluate(app_config("evaluate", tmp_path / "eval", [f"ckpt_path={ckpt}", "num_samples=100"]))
    assert 0 <= results["code_error"] <= 0.9 + 1e-9 and sorted(results["code_matching"]) == list(range(10))
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["code_error"] == results["code_error"]
