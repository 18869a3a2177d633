"""Realistic mistakes are named by a stable diagnosis id (what class reports count) and a hint about that
mistake, not only "wrong value": each variant from the library below is graded on its public problem."""

from __future__ import annotations

import ast
import re
from collections import Counter

import pytest

from autograder import render
from autograder.diagnoses import CORE, GENERIC, catalogue, declared, is_targeted, meaning
from autograder.paths import ROOT
from autograder.sandbox.tamper import KINDS
from tests.conftest import grade_problem, make_submission
from instructor.variants import collect

EXPECTED = {
    # variant name: (problem, diagnosis id)
    "return_undiscounted": ("discounted_return", "undiscounted"),
    "return_is_reward_to_go": ("discounted_return", "return-is-reward-to-go"),
    "return_discount_from_one": ("discounted_return", "discounted-from-one"),
    "rtg_forward_cumsum": ("reward_to_go", "reward-to-go-forward"),
    "rtg_undiscounted": ("reward_to_go", "undiscounted"),
    "rtg_discount_from_start": ("reward_to_go", "reward-to-go-discounted-from-start"),
    "rtg_excludes_current_reward": ("reward_to_go", "excludes-current-reward"),
    "rtg_is_full_return": ("reward_to_go", "full-return-at-every-step"),
    "gae_truncation_is_terminal": ("gae", "truncation-as-terminal"),
    "gae_ignores_terminated": ("gae", "bootstraps-past-terminal"),
    "gae_lambda_ignored": ("gae", "lambda-ignored"),
    "gae_forward_recursion": ("gae", "gae-forward-recursion"),
    "rtg_list_not_reversed": ("reward_to_go", "reward-to-go-reversed"),
    "gae_returns_the_lambda_return": ("gae", "lambda-return-not-advantage"),
    "gae_delta_subtracts_the_next_value": ("gae", "delta-baseline-off-by-one"),
    "bc_sum_not_mean": ("bc_loss", "summed-not-averaged"),
    "bc_sign_flipped": ("bc_loss", "sign-flipped"),
    "bc_probability_not_log": ("bc_loss", "probability-not-log"),
    "bc_mean_over_action_dimensions": ("bc_loss", "averaged-over-action-dimensions"),
    "pg_sign_flipped": ("pg_unbiased_full_return", "sign-flipped"),
    "pg_mean_over_time_steps": ("pg_unbiased_full_return", "averaged-over-time-steps"),
    # recorded actions that are not independent draws of π (autograder.draws)
    "greedy_mode_action": ("sample_trajectory", "actions-not-sampled"),
    "sample_records_the_clipped_action": ("sample_trajectory", "actions-clipped"),
    "sample_reseeds_before_every_action": ("sample_trajectory", "reseeds-global-rng"),
    "sample_reseeds_at_every_reset": ("sample_trajectories", "draws-not-independent"),
    "relabel_labels_keep_the_graph": ("dagger_relabel", "constant-requires-grad"),
    # DAgger's rollouts tested against the learner's own draws (autograder.dagger_moves)
    "dagger_rolls_out_the_mean_action": ("dagger_process", "mean-action-rollouts"),
    "dagger_rolls_out_the_expert": ("dagger_process", "expert-rollouts"),
    "dagger_rolls_out_the_initial_policy": ("dagger_process", "stale-learner"),
    "optimal_baseline_epsilon_in_denominator": ("optimal_baseline_formula", "epsilon-in-denominator"),
    "optimal_baseline_denominator_clamped": ("optimal_baseline_formula", "epsilon-in-denominator"),
    "off_policy_batch_as_one_trajectory": ("off_policy_unbiased", "batch-as-one-trajectory"),
    "off_policy_sum_over_trajectories": ("off_policy_unbiased", "summed-over-trajectories"),
    "off_policy_last_trajectory_only": ("off_policy_unbiased", "one-trajectory-only"),
    "off_policy_product_of_probabilities": ("off_policy_unbiased", "weights-underflow"),
    # the side-effect contract (autograder.contract), checked for every call
    "rtg_in_place": ("reward_to_go", "modifies-input"),
    "pg_converts_the_policy_to_float64": ("pg_unbiased_full_return", "converts-input"),
    "iw_sets_requires_grad_on_its_input": ("importance_weights", "input-requires-grad-changed"),
    "pg_returns_the_grad_tensors": ("pg_batch_mean", "returns-grad-buffer"),
    "rtg_gamma_zero_returns_the_rewards": ("reward_to_go", "output-aliases-input"),
    "return_gamma_zero_a_view_of_the_first_reward": ("discounted_return", "output-aliases-input"),
    "iw_writes_into_a_buffer_it_keeps": ("importance_sampling_expectation", "output-shared-across-calls"),
    "rtg_built_with_requires_grad": ("reward_to_go", "constant-requires-grad"),
    "pg_gradients_in_float64": ("pg_reward_to_go", "gradient-wrong-dtype"),
    "sample_reseeds_torch_with_the_seed": ("sample_trajectory", "reseeds-global-rng"),
    "sample_reseeds_numpy_with_the_seed": ("sample_trajectory", "reseeds-global-rng"),
    "train_reseeds_the_global_rng": ("train_policy_steps", "reseeds-global-rng"),
}
# train_policy's mistakes, named alike by the public check (each step from the child's records,
# autograder.train_steps) and by the hidden one, which runs the same checks before replaying the reference
EXPECTED_TRAINING = {
    "train_minibatch_drawn_once": "minibatch-reused",
    "train_whole_buffer_as_batch": "whole-buffer-as-batch",
    "train_global_rng": "wrong-generator",
    "train_wrong_batch_size_field": "wrong-minibatch-size",
    "train_two_steps_per_minibatch": "two-steps-per-minibatch",
    "train_own_optimizer_each_call": "own-optimizer",
    "train_loss_summed_over_steps": "wrong-loss-logged",
    "train_never_steps": "parameters-unchanged",
    "train_gradients_never_cleared": "no-zero-grad",
    "train_loss_logged_after_the_step": "loss-logged-after-step",
    "train_overwrites_the_learning_rate": "optimizer-settings-changed",
}
VARIANTS = {v.name: v for v in collect("BUGGY")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_classic_mistake_is_named(tmp_path, name):
    problem, diagnosis = EXPECTED[name]
    variant = VARIANTS[name]
    result = grade_problem(make_submission(tmp_path, {variant.module: variant.source}), problem,
                           with_reference=False)
    assert result.status == "failed"
    assert result.diagnosis == diagnosis, f"{name}: {result.diagnosis}\n{render.details(result)}"


@pytest.mark.parametrize("problem", ["train_policy_steps", "train_policy_matches_reference"])
@pytest.mark.parametrize("name", sorted(EXPECTED_TRAINING))
def test_a_training_loop_mistake_is_named(tmp_path, name, problem):
    variant = VARIANTS[name]
    result = grade_problem(make_submission(tmp_path, {variant.module: variant.source}), problem,
                           with_reference=problem.endswith("reference"))
    assert result.status == "failed"
    assert result.diagnosis == EXPECTED_TRAINING[name], f"{name}: {result.diagnosis}\n{render.details(result)}"


def _named_here(variant, problem: str) -> set[str]:
    """The targeted ids right for ``variant`` on ``problem``: the one its declaration pins there, and the ones
    the tables above name for it."""
    named = {variant.diagnosis_on(problem)}
    if variant.name in EXPECTED and EXPECTED[variant.name][0] == problem:
        named.add(EXPECTED[variant.name][1])
    if variant.name in EXPECTED_TRAINING:
        named.add(EXPECTED_TRAINING[variant.name])
    return named - {""}


@pytest.mark.slow
@pytest.mark.parametrize("variant", collect("BUGGY"), ids=lambda v: v.id)
def test_every_targeted_diagnosis_names_the_variants_own_mistake(variant_grading, variant):
    """A buggy variant graded on every problem it lists gets either a generic id (autograder.diagnoses.GENERIC,
    its hint the problem's own) or a targeted one declared right for that variant: a check that names a
    mistake the student did not make misleads more than one that names none."""
    wrong = []
    for problem in variant.problems:
        result = variant_grading(variant, problem)
        if result.diagnosis and not meaning(result.diagnosis):
            wrong.append(f"{problem}: {result.diagnosis} is not in the catalogue (autograder.diagnoses)")
        elif is_targeted(result.diagnosis) and result.diagnosis not in _named_here(variant, problem):
            wrong.append(f"{problem}: {result.diagnosis} ({result.reason[:160]})")
    assert not wrong, f"{variant.name} is misdiagnosed:\n  " + "\n  ".join(wrong)


def test_the_generic_ids_are_not_targeted():
    assert not any(is_targeted(d) for d in GENERIC) and is_targeted("sign-flipped")
    assert not is_targeted("raised-ValueError") and not is_targeted("")



# --------------------------------------------------------------------------- the catalogue
ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
HYPHENATED = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")
# hyphenated strings of the grader that are not diagnoses: names of threads, files and steps, and the
# kinds of tampering evidence (sandbox.tamper.KINDS, explained in the class report's own table)
NOT_DIAGNOSES = {"utf-8", "fork-server", "warm-up", "self-check", "grader-request", "grader-memory-watchdog",
                 "sandbox-output", "thread-self", *KINDS}


def _string(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _values(node):
    """The strings an expression in a diagnosis's place can evaluate to (through ``a if c else b``)."""
    if isinstance(node, ast.IfExp):
        yield from _values(node.body)
        yield from _values(node.orelse)
    elif _string(node) is not None:
        yield _string(node)


def _ids_in_the_code() -> dict[str, str]:
    """Every id the grader's code can give, read from its source: every hyphenated string literal of
    autograder/, and every string in a place that holds a diagnosis, in autograder/ and instructor/ (``diagnosis=…``, ``x.diagnosis = …``, ``Mismatch(msg, hint, id)``,
    ``Finding(id, …)``, ``Event(id, …)``, ``SandboxFatal(msg, id)``) → where it is."""
    found = {}
    for path in sorted([*(ROOT / "autograder").rglob("*.py"), *(ROOT / "instructor").rglob("*.py")]):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            places = []
            if isinstance(node, ast.keyword) and node.arg == "diagnosis":
                places.append(node.value)
            elif isinstance(node, ast.Assign) and any(getattr(t, "attr", "") == "diagnosis" for t in node.targets):
                places.append(node.value)
            elif isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                position = {"Mismatch": 2, "Finding": 0, "Event": 0, "SandboxFatal": 1}.get(name)
                if position is not None and len(node.args) > position:
                    places.append(node.args[position])
            for place in places:
                for text in _values(place):
                    found.setdefault(text, where)
            text = _string(node)
            if text and HYPHENATED.match(text) and text not in NOT_DIAGNOSES and where.startswith("autograder"):
                found.setdefault(text, where)
    return found


def test_every_id_a_check_can_raise_is_in_the_catalogue():
    ids = _ids_in_the_code()
    assert {"sign-flipped", "reward-to-go-forward", "modifies-input", "student-time-limit"} <= set(ids)
    missing = sorted(f"{d} ({where})" for d, where in ids.items() if d not in catalogue())
    assert not missing, "diagnosis ids without a meaning in autograder.diagnoses (or a problem's DIAGNOSES):\n  " \
        + "\n  ".join(missing)


def test_every_id_the_variants_expect_is_in_the_catalogue():
    expected = {d for v in collect("BUGGY") for d in [v.diagnosis, *v.diagnoses.values()] if d}
    expected |= {d for _, d in EXPECTED.values()} | set(EXPECTED_TRAINING.values())
    assert not sorted(expected - set(catalogue()))


def test_each_id_is_declared_once_with_a_one_line_meaning():
    counts = Counter(d for ids in declared().values() for d in ids)
    assert not [d for d, n in counts.items() if n > 1], "declared twice"
    assert len(declared()) > 2  # the grader's own ids and the problem modules'
    for diagnosis, words in catalogue().items():
        assert ID.match(diagnosis), diagnosis
        assert words and "\n" not in words and len(words) < 160, diagnosis
    assert GENERIC <= set(CORE)
    assert meaning("raised-ZeroDivisionError") == "the student's code raised ZeroDivisionError"
    assert meaning("no-such-mistake") == ""


def test_the_class_report_says_what_its_diagnoses_mean():
    from autograder.results import GradeRun
    from instructor import class_report

    def results(diagnosis):
        return GradeRun.from_json({"score": 0, "tests": [
            {"name": "hw2/gae: GAE", "score": 0, "max_score": 4, "status": "failed", "tags": ["hw2"],
             "extra_data": {"problem": "hw2/gae", "diagnosis": diagnosis}}]})

    found = class_report.ClassResults({("alice", "hw2"): results("lambda-ignored"),
                                       ("bob", "hw2"): results("raised-KeyError"),
                                       ("carol", "hw2"): results("made-up-id")})
    text = class_report.markdown(class_report.summarise(found), [], "course")
    assert f"- `lambda-ignored`: {catalogue()['lambda-ignored']}" in text
    assert "- `raised-KeyError`: the student's code raised KeyError" in text
    assert "- `made-up-id`: not in the grader’s catalogue" in text
