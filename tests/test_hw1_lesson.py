"""hw1 on MuJoCo: the defaults of ``make train HW=hw1``, CS285's DAgger plot, and ``make hw1-lesson``'s table."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch

from rlkit.experiments import hw1, hw1_lesson
from rlkit.imitation import FAST_TASK, MUJOCO_TASKS
from rlkit.train import KIT_ROOT as ROOT


def config(*argv: str):
    return hw1.config_from_args(hw1.build_parser().parse_args(list(argv)))


def test_mujoco_bc_is_dagger_iteration_0():
    """BC and DAgger's iteration 0 train the same way, so the BC line of the DAgger plot is the BC run."""
    for task in MUJOCO_TASKS:
        bc, dagger = config("--env", task, "--method", "bc"), config("--env", task, "--method", "dagger")
        for field in ("n_demos", "train_steps_per_iter", "train_batch_size", "learning_rate", "hidden",
                      "eval_batch_size"):
            assert getattr(bc, field) == getattr(dagger, field), (task, field)
        assert dagger.n_iter == 10 and bc.n_demos == 2


def test_bc_long_has_daggers_gradient_steps():
    dagger = hw1_lesson.config_for("Walker2d-v5", "dagger", 1)
    long = hw1_lesson.config_for("Walker2d-v5", "bc-long", 1)
    assert long.method == "bc" and long.seed == 1
    assert long.train_steps_per_iter == dagger.n_iter * dagger.train_steps_per_iter
    assert hw1_lesson.config_for("Walker2d-v5", "bc", 1) == config("--env", "Walker2d-v5", "--seed", "1")


def test_bc_data_has_daggers_labelled_pairs_and_gradient_steps():
    """The equal-budget control: DAgger labels its demonstrations and (n_iter - 1) × batch_size learner steps."""
    for task in MUJOCO_TASKS:
        dagger = hw1_lesson.config_for(task, "dagger", 2)
        data = hw1_lesson.config_for(task, "bc-data", 2)
        assert data.method == "bc" and data.seed == 2
        assert data.train_steps_per_iter == dagger.n_iter * dagger.train_steps_per_iter
        assert data.n_demos * data.ep_len >= dagger.n_demos * dagger.ep_len + (dagger.n_iter - 1) * dagger.batch_size
        assert (data.n_demos - 1) * data.ep_len < dagger.n_demos * dagger.ep_len + (dagger.n_iter - 1) * dagger.batch_size
        assert data.n_demos == 47  # 2 + 9 × 5000 / 1000, the MuJoCo defaults


def test_demonstrations_beyond_the_shipped_ones_are_the_experts_rollouts():
    """The shipped two come first, unchanged; the third is the expert's episode from the next reset seed,
    and it is the same on every call (a control run is reproducible)."""
    from rlkit import imitation

    task = "Hopper-v5"
    shipped = imitation.load_task_demonstrations(task, 2)
    more = imitation.load_task_demonstrations(task, 3)
    again = imitation.load_task_demonstrations(task, 3)
    assert len(more) == 3
    for a, b in zip(shipped, more[:2]):
        assert a.observations.equal(b.observations) and a.actions.equal(b.actions)
    assert more[2].observations.equal(again[2].observations) and more[2].actions.equal(again[2].actions)
    assert not more[2].observations[0].equal(more[1].observations[0])  # a new reset seed
    expert = imitation.load_task_expert(task)
    with torch.no_grad():
        assert torch.allclose(expert(more[2].observations.float()), more[2].actions.float(), atol=1e-5)
    from rlkit.experts import expert_info

    assert float(more[2].rewards.sum()) > 0.8 * expert_info(task)["mean"]  # a whole expert episode, not a fall


def test_command_line_options_win_over_task_defaults():
    cfg = config("--env", "Hopper-v5", "--method", "dagger", "--lr", "0.01", "--n-iter", "3", "--seed", "4")
    assert (cfg.learning_rate, cfg.n_iter, cfg.seed) == (0.01, 3, 4)


def test_lunar_lander_defaults_are_the_graded_ones():
    """The graded problems' settings (README: DAgger from one demonstration, 6 iterations, 300 steps)."""
    cfg = config("--env", FAST_TASK, "--method", "dagger")
    assert (cfg.n_demos, cfg.n_iter, cfg.batch_size, cfg.train_steps_per_iter) == (1, 6, 1000, 300)


def test_dagger_plot_is_written(tmp_path):
    rows = [{"iteration": i, "eval_return_mean": 100.0 * i, "eval_return_std": 10.0} for i in range(3)]
    hw1.plot_dagger(rows, tmp_path / "curve.png", "Hopper-v5, dagger", expert=300.0, bc=0.0)
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mean_action_curve_leaves_training_unchanged(tmp_path):
    """The per-iteration mean-action evaluation steps its own environment and draws none of the run's random
    numbers: the logged training is the same with and without it, and its last point is the final evaluation."""
    common = [sys.executable, "-m", "rlkit.train", "--hw", "hw1", "--submission", str(ROOT / "solutions"),
              "--env", FAST_TASK, "--method", "dagger", "--n-iter", "2", "--train-steps", "20", "--batch-size", "200",
              "--eval-batch-size", "200", "--eval-episodes", "3", "--runs-dir", str(tmp_path), "--no-progress"]
    for extra in (["--name", "with"], ["--name", "without", "--iter-eval-episodes", "0"]):
        out = subprocess.run([*common, *extra], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert out.returncode == 0, out.stderr
    read = lambda name: list(csv.DictReader(open(tmp_path / name / "log.csv")))  # noqa: E731
    with_rows, without_rows = read("with"), read("without")
    training = ["iteration", "env_steps", "buffer_size", "loss", "eval_return_mean", "eval_return_std"]
    assert [[r[k] for k in training] for r in with_rows] == [[r[k] for k in training] for r in without_rows]
    assert "mean_action_return_mean" not in without_rows[0]
    final = json.loads((tmp_path / "with" / "summary.json").read_text())["eval_returns"]
    assert float(with_rows[-1]["mean_action_return_mean"]) == pytest.approx(sum(final) / len(final))
    assert int(with_rows[-1]["mean_action_episodes"]) == 3


def _write_run(root, task, method, seed, returns, expert, seconds, cpu_seconds=None, pairs=2000):
    d = root / hw1_lesson.run_name(task, method, seed)
    d.mkdir(parents=True)
    summary = {"eval_returns": returns, "expert_eval_returns": expert, "seconds": seconds, "iterations": 1,
               "env_steps": 0}
    if cpu_seconds is not None:
        summary["cpu_seconds"] = cpu_seconds
    (d / "summary.json").write_text(json.dumps(summary))
    (d / "log.csv").write_text(f"iteration,eval_return_mean,eval_return_std,buffer_size\n0,50.0,1.0,{pairs}\n")


def test_lesson_table_from_finished_runs(tmp_path, capsys):
    for seed, ret in enumerate((100.0, 300.0)):
        _write_run(tmp_path, "Hopper-v5", "bc", seed, [ret, ret], [1000.0, 1000.0], 5.0 + seed)
    _write_run(tmp_path, "Hopper-v5", "dagger", 0, [900.0], [1000.0], 50.0, cpu_seconds=40.0, pairs=47625)
    code = hw1_lesson.main(["--table-only", "--runs-dir", str(tmp_path), "--tasks", "Hopper-v5",
                            "--seeds", "0", "1"])
    assert code == 0
    text = (tmp_path / "table.md").read_text()
    assert "| Hopper-v5 | 1000 | BC | 100, 300 (seeds 0, 1) | 200 ± 100 | 20% (10–30%) | 50 (5%) | 2000 | 5, 6 s |" in text
    assert "| Hopper-v5 | 1000 | DAgger | 900 (seeds 0) | 900 | 90% | 50 (5%) | 47625 | 50 (40) s |" in text
    assert text.strip() in capsys.readouterr().out
    assert (tmp_path / "dagger.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lesson_figure_needs_a_dagger_run(tmp_path):
    _write_run(tmp_path, "Hopper-v5", "bc", 0, [100.0], [1000.0], 5.0)
    assert hw1_lesson.main(["--table-only", "--runs-dir", str(tmp_path), "--tasks", "Hopper-v5", "--seeds", "0"]) == 0
    assert not (tmp_path / "dagger.png").exists()


def test_lesson_curve_prefers_the_mean_action(tmp_path):
    (tmp_path / "log.csv").write_text("iteration,eval_return_mean,mean_action_return_mean\n0,1.0,2.0\n1,3.0,4.0\n")
    assert hw1_lesson.dagger_curve(tmp_path) == [2.0, 4.0]
    (tmp_path / "log.csv").write_text("iteration,eval_return_mean\n0,1.0\n1,3.0\n")
    assert hw1_lesson.dagger_curve(tmp_path) == [1.0, 3.0]
