"""hw1 on MuJoCo: the defaults of ``make train HW=hw1``, CS285's DAgger plot, and ``make hw1-lesson``'s table."""

from __future__ import annotations

import json

from rlkit.experiments import hw1, hw1_lesson
from rlkit.imitation import FAST_TASK, MUJOCO_TASKS


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


def _write_run(root, task, method, seed, returns, expert, seconds, cpu_seconds=None):
    d = root / hw1_lesson.run_name(task, method, seed)
    d.mkdir(parents=True)
    summary = {"eval_returns": returns, "expert_eval_returns": expert, "seconds": seconds, "iterations": 1,
               "env_steps": 0}
    if cpu_seconds is not None:
        summary["cpu_seconds"] = cpu_seconds
    (d / "summary.json").write_text(json.dumps(summary))
    (d / "log.csv").write_text("iteration,eval_return_mean,eval_return_std\n0,50.0,1.0\n")


def test_lesson_table_from_finished_runs(tmp_path, capsys):
    for seed, ret in enumerate((100.0, 300.0)):
        _write_run(tmp_path, "Hopper-v5", "bc", seed, [ret, ret], [1000.0, 1000.0], 5.0 + seed)
    _write_run(tmp_path, "Hopper-v5", "dagger", 0, [900.0], [1000.0], 50.0, cpu_seconds=40.0)
    code = hw1_lesson.main(["--table-only", "--runs-dir", str(tmp_path), "--tasks", "Hopper-v5",
                            "--seeds", "0", "1"])
    assert code == 0
    text = (tmp_path / "table.md").read_text()
    assert "| Hopper-v5 | 1000 | BC | 100, 300 (seeds 0, 1) | 200 ± 100 | 20% (10–30%) | 50 (5%) | 5, 6 s |" in text
    assert "| Hopper-v5 | 1000 | DAgger | 900 (seeds 0) | 900 | 90% | 50 (5%) | 50 (40) s |" in text
    assert text.strip() in capsys.readouterr().out
