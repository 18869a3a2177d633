"""hw2 integration: your reward-to-go and GAE train a policy on CartPole-v1.

The training runs in the sandboxed child: given code (``rlkit.pg_agent``)
samples episodes and takes policy-gradient steps, and the advantages come from
the submission's ``hw2.returns``. The child sends back only data — the trained
policy's parameters and the learning curve. The judge rebuilds the policy from
the parameters with its own classes and evaluates it itself, with its own
environment and seeds, so nothing the child says about returns is trusted.

Determinism: training seeds are explicit (torch, numpy and the environment
resets all follow the seed, and the child runs torch on one thread), and the
judge's evaluation is greedy on fixed reset seeds. A correct implementation
can still differ from the reference in the last float bit, and training
amplifies that, so the problem tries up to ``len(SEEDS)`` training seeds and
passes on the first that reaches the bar.

Speed: the training steps eight CartPoles side by side (``num_envs``: one policy
call per step for all eight), about 13k env steps a second on one core, three
times what one CartPole at a time gives. A batch then holds up to eight whole
episodes, so learning takes more env steps than with one environment, and the
budget is set from the reference's own runs with this configuration: each of the
training seeds 0–11 passes on its own (the judge's evaluation averaged 500),
after 27k–100k env steps (median 44k), in 2–8 s on a loaded 2-core machine. The
budget is three times the slowest of them; a submission that never learns costs
two runs of it, about 30 s each on an idle core (measured: 60 s for the two).
"""

from __future__ import annotations

import math

import torch

from autograder.compare import Mismatch, load_checked_parameters
from autograder.problem import problem
from autograder.returned import as_count, as_number

MODULE = "hw2.returns"
ENV = "CartPole-v1"
STEP_BUDGET = 300_000  # env steps per training run; the reference needs 27k–100k (median 44k)
SEEDS = (0, 1)
# Sent to the child as data (rlkit.pg_agent.PGConfig fields): nothing in the student's process decides them.
TRAINING_CONFIG = dict(env=ENV, num_envs=8, batch_size=1000, gamma=0.99, gae_lambda=0.97, normalize_advantages=True,
                       lr=1e-2, critic_lr=1e-2, eval_episodes=0, target_eval_episodes=5)
STOP_RETURN = 490.0  # training stops once a batch averages this much; the judge then evaluates the policy
TARGET = 475.0
EVAL_EPISODES = 20
EVAL_SEED = 50_000  # reset seeds of the judge's evaluation: none of them is used in training
PRE_CHECK_SECONDS = 10.0  # two calls on 3 steps, milliseconds for any implementation that returns
HINT = ("the policy-gradient step weights ∇ log π(a_t|s_t) by your advantages: if a unit problem above fails, fix "
        "that first. Otherwise look for advantages with the wrong sign or scale (A_t = δ_t + γλ A_{t+1}, "
        "δ_t = r_t + γ V(s_{t+1}) − V(s_t)), reward-to-go that is not Q̂_t = r_t + γ Q̂_{t+1}, a bootstrap "
        "V(s_T) dropped on truncation, or outputs that are not float tensors of shape [T]")


def policy_from_parameters(params) -> torch.nn.Module:
    """The judge's own CategoricalMLPPolicy for CartPole, loaded with the child's parameters (checked)."""
    from rlkit.policies import CategoricalMLPPolicy

    return load_checked_parameters(CategoricalMLPPolicy(4, 2, (64, 64)), params, HINT)


def judge_evaluation(policy) -> list[float]:
    """Greedy returns of ``policy`` on ``EVAL_EPISODES`` fresh CartPole episodes, computed in the judge."""
    import gymnasium as gym

    from rlkit.pg_agent import evaluate
    from rlkit.sampling import EnvPool

    with EnvPool.make(lambda: gym.make(ENV), EVAL_EPISODES) as pool:  # every episode side by side
        return evaluate(pool, policy, EVAL_EPISODES, seed=EVAL_SEED)


def _curve(env_steps, returns) -> str:
    """A few points of the learning curve, for the failure message (the child sends it: any value may come)."""
    if not all(isinstance(x, torch.Tensor) and x.dim() == 1 for x in (env_steps, returns)):
        return "(no learning curve)"
    pairs = [(as_count(s), as_number(r)) for s, r in zip(env_steps.tolist(), returns.tolist())]
    if any(s is None or r is None for s, r in pairs):
        return "(no learning curve)"
    if not pairs:
        return "(no updates)"
    every = max(1, len(pairs) // 8)
    shown = pairs[::every] + ([pairs[-1]] if (len(pairs) - 1) % every else [])
    return ", ".join(f"{s}: {r:.0f}" for s, r in shown)


def _steps_used(env_steps) -> int:
    """The env steps the run took: the last point of its curve (0 when there is no readable curve)."""
    if isinstance(env_steps, torch.Tensor) and env_steps.dim() == 1 and len(env_steps):
        return as_count(env_steps[-1].item()) or 0
    return 0


@problem("hw2", "cartpole_training", points=5, slow=True, seconds=600, hint=HINT,
         stubs=[(MODULE, "discounted_reward_to_go"), (MODULE, "generalized_advantages")])
def check_cartpole_training(ctx):
    """CartPole-v1 learned with your reward-to-go and GAE: ≥ 475 average return within 300k env steps."""
    # Fail fast (a stub raises NotImplementedError here, in milliseconds, not after a training run; one that
    # never returns costs PRE_CHECK_SECONDS, not the problem's 600 s).
    r, v = torch.tensor([1.0, 1.0, 1.0]), torch.tensor([0.5, 0.5, 0.5, 0.5])
    with ctx.limit(PRE_CHECK_SECONDS, "the pre-check before training (one call of each function on 3 steps)"):
        ctx.student(MODULE, "discounted_reward_to_go")(r, 0.99)
        ctx.student(MODULE, "generalized_advantages")(r, v, 0.99, 0.97, False)

    train = ctx.task("train_policy_gradient", MODULE)
    attempts = []
    for seed in SEEDS:
        reply = train(TRAINING_CONFIG, seed, STEP_BUDGET, STOP_RETURN)
        if not isinstance(reply, dict):
            raise Mismatch("the training run returned no result", "did your code replace the given training code?",
                           "no-result")
        returns = judge_evaluation(policy_from_parameters(reply.get("policy")))
        mean = sum(returns) / len(returns)
        steps = reply.get("env_steps")
        attempts.append(f"training seed {seed}: {_steps_used(steps)} env steps, then {mean:.1f} average return over "
                        f"{EVAL_EPISODES} greedy evaluation episodes (min {min(returns):.0f}); training curve "
                        f"(env steps: batch average return) {_curve(steps, reply.get('return_mean'))}")
        ctx.notes.append(attempts[-1])
        if mean >= TARGET and not math.isnan(mean):
            return
    raise Mismatch(f"the policy trained with your hw2.returns did not reach {TARGET:g} average return on {ENV} "
                   f"within {STEP_BUDGET} env steps, with any of {len(SEEDS)} training seeds:\n  "
                   + "\n  ".join(attempts), HINT, "below-target")
