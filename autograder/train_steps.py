"""Each step of the student's train_policy, checked from what the child's watched objects recorded.

``autograder.child_tasks.train_policy_call`` runs ``train_policy`` on a buffer, an Adam and a policy of the
grader's own, which record what happens to them: every ``buffer.sample`` (size, generator, pairs drawn), every
optimizer step (the parameters θ_k it starts from, their gradients, each group's learning rate), and the
optimizer's settings before and after the call. The contract fixes each step, so the judge checks it without the
reference:

  * the given optimizer takes exactly cfg.train_steps_per_iter steps and keeps the settings it was given;
  * before each step, a fresh minibatch of cfg.train_batch_size pairs from buffer.sample with the given generator;
  * step k follows ∇θ bc_loss(θ_k; minibatch k), the old gradients cleared;
  * losses[k] is bc_loss(θ_k; minibatch k), the value BEFORE the step.

Minibatch k is the one buffer.sample returned last before step k; a loop that indexes the buffer itself is held
to the minibatches the buffer's sampler draws with the given generator (``ReplayBuffer.sample`` is
deterministic: the judge draws them again). bc_loss and its gradient are recomputed here in float64.
"""

from __future__ import annotations

import copy

import torch

from autograder.compare import Mismatch, describe, fmt, load_checked_parameters, same_value, tolerance, within
from autograder.returned import as_number


def check_train_steps(reply: dict, args: tuple, losses: list, hint: str) -> None:
    """Raise a Mismatch at the first step that breaks the contract (see the module's docstring)."""
    from autograder.child_tasks import build_buffer, build_policy

    spec, observations, actions, config, generator_seed, _ = args
    seen = reply.get("seen")
    records = _read(seen)
    _check_settings(records)
    steps, size = config["train_steps_per_iter"], config["train_batch_size"]
    _check_step_count(len(records["steps"]), steps)
    minibatches = _minibatches(records, config)
    if minibatches is None:
        generator = torch.Generator().manual_seed(int(generator_seed))
        buffer = build_buffer(observations, actions)
        minibatches = [buffer.sample(size, generator) for _ in range(steps)]
    thetas = [load_checked_parameters(build_policy(spec), step["parameters"], hint) for step in records["steps"]]
    final = load_checked_parameters(build_policy(spec), reply.get("policy"), hint)
    gradients = []
    for k, (theta, (obs, act)) in enumerate(zip(thetas, minibatches)):
        loss, gradient = _loss_and_gradient(theta, obs, act)
        gradients.append(gradient)
        _check_gradient(k, records["steps"][k]["grads"], gradients, theta, observations, actions)
        after = thetas[k + 1] if k + 1 < len(thetas) else final
        _check_loss(k, losses[k], loss, after, theta, (obs, act), (observations, actions))


def _read(seen) -> dict:
    """The records, checked for their types (student code ran beside the objects that wrote them)."""
    ok = (isinstance(seen, dict) and isinstance(seen.get("steps"), list) and isinstance(seen.get("order"), list)
          and isinstance(seen.get("minibatches"), list) and isinstance(seen.get("sample_sizes"), list)
          and isinstance(seen.get("sample_generators"), list) and isinstance(seen.get("settings_before"), list)
          and isinstance(seen.get("settings_after"), list)
          and all(isinstance(s, dict) and isinstance(s.get("grads"), dict) and isinstance(s.get("lr"), list)
                  for s in seen["steps"])
          and all(isinstance(m, list) and len(m) == 2 and all(isinstance(t, torch.Tensor) for t in m)
                  for m in seen["minibatches"])
          and seen["order"].count("sample") == len(seen["minibatches"]) == len(seen["sample_sizes"])
          and seen["order"].count("step") == len(seen["steps"]))
    if not ok:
        raise Mismatch("train_policy's run could not be read back (the records of the given buffer and optimizer "
                       "are malformed)", "did your code replace the given objects?", "malformed-reply")
    return seen


def _check_settings(records: dict) -> None:
    before, after = records["settings_before"], records["settings_after"]
    if not same_value(before, after):
        pairs = [(b, a) for b, a in zip(before, after) if isinstance(b, dict) and isinstance(a, dict)]
        shown = "; ".join(f"{key}: {b.get(key)!r} → {a.get(key)!r}" for b, a in pairs
                          for key in sorted(b.keys() | a.keys()) if not same_value(b.get(key), a.get(key)))
        raise Mismatch(f"train_policy changed the given optimizer's settings ({shown or 'its parameter groups'})",
                       SETTINGS_HINT, "optimizer-settings-changed")
    given = [group.get("lr") for group in before if isinstance(group, dict)]
    for k, step in enumerate(records["steps"]):
        if not same_value(step["lr"], given):
            raise Mismatch(f"train_policy: the given optimizer took step {k} at learning rate "
                           f"{fmt(step['lr'][0]) if step['lr'] else '?'}, not the {fmt(given[0])} it was given with",
                           SETTINGS_HINT, "optimizer-settings-changed")


SETTINGS_HINT = ("use the optimizer train_policy is given as it is: its learning rate and other settings are the "
                 "caller's (the training loop builds it once, for the whole run); never write into "
                 "optimizer.param_groups")


def _check_step_count(made: int, steps: int) -> None:
    if made == steps:
        return
    if made == 0:
        raise Mismatch("train_policy: the given optimizer took no step, yet the parameters changed: an optimizer of "
                       "its own took them (step the optimizer train_policy is given; a new Adam at every call "
                       "restarts its moment estimates at every DAgger iteration)", diagnosis="own-optimizer")
    if made == 2 * steps:
        raise Mismatch(f"train_policy: two optimizer steps on each minibatch ({made} steps for {steps} "
                       "minibatches): one step per minibatch", diagnosis="two-steps-per-minibatch")
    raise Mismatch(f"train_policy: the given optimizer took {made} steps, expected cfg.train_steps_per_iter = "
                   f"{steps}", diagnosis="wrong-optimizer-step-count")


def _minibatches(records: dict, config: dict) -> list | None:
    """Step k's minibatch: the one buffer.sample returned last before step k. None when buffer.sample was never
    called (the caller then draws them as the buffer's sampler does)."""
    sizes, generators = records["sample_sizes"], records["sample_generators"]
    if not sizes:
        return None
    size, batch_size = config["train_batch_size"], config["batch_size"]
    if any(g != "given" for g in generators):
        raise Mismatch("train_policy: minibatches drawn with torch's global RNG (or another generator) instead of "
                       "the given generator: buffer.sample(cfg.train_batch_size, generator)",
                       diagnosis="wrong-generator")
    if any(n != size for n in sizes):
        what = (f"cfg.batch_size = {batch_size} pairs (the DAgger rollout budget)" if all(n == batch_size for n in sizes)
                else f"{sorted(set(sizes))} pairs")
        raise Mismatch(f"train_policy: minibatches of {what} instead of cfg.train_batch_size = {size}",
                       diagnosis="wrong-minibatch-size")
    chosen, drawn, fresh = [], -1, False
    for event in records["order"]:
        if event == "sample":
            drawn, fresh = drawn + 1, True
        elif event == "step":
            if not fresh:
                raise Mismatch(f"train_policy: optimizer step {len(chosen)} reused a minibatch drawn once for an "
                               "earlier step: draw a fresh one before every step", diagnosis="minibatch-reused")
            chosen.append(records["minibatches"][drawn])
            fresh = False
    return chosen


def _loss_and_gradient(policy: torch.nn.Module, obs: torch.Tensor, act: torch.Tensor) -> tuple[float, list]:
    """bc_loss = −(1/B) Σ log π(a_i|o_i) at these parameters, and its gradient, in float64."""
    p64 = copy.deepcopy(policy).double()
    a = act if not act.is_floating_point() else act.double()
    loss = -p64(obs.double()).log_prob(a).mean()
    return float(loss.detach()), list(torch.autograd.grad(loss, list(p64.parameters())))


def _check_gradient(k: int, recorded: dict, gradients: list, theta, observations, actions) -> None:
    names = [name for name, _ in theta.named_parameters()]
    want = gradients[k]
    got = [recorded.get(name) for name in names]
    if not all(isinstance(g, torch.Tensor) and g.shape == w.shape for g, w in zip(got, want)):
        raise Mismatch(f"train_policy: at optimizer step {k} some parameters had no gradient: backpropagate the "
                       "minibatch's bc_loss before each step", diagnosis="no-gradient")
    if _close(got, want):
        return
    if k and _close(got, [sum(g[i] for g in gradients) for i in range(len(want))]):
        raise Mismatch(f"train_policy: optimizer step {k} followed the SUM of the gradients of steps 0…{k}: the "
                       "gradients are never cleared, and backward ADDS to .grad (optimizer.zero_grad() before each "
                       "backward)", diagnosis="no-zero-grad")
    if _close(got, _loss_and_gradient(theta, observations, actions)[1]):
        raise Mismatch(f"train_policy: optimizer step {k} followed the gradient of bc_loss on the whole buffer: draw "
                       "a minibatch of cfg.train_batch_size pairs at every step", diagnosis="whole-buffer-as-batch")
    name = max(range(len(want)), key=lambda i: float((got[i].double() - want[i]).abs().max()))
    raise Mismatch(f"train_policy: optimizer step {k} did not follow ∇θ bc_loss on its minibatch at the parameters it "
                   f"started from: ∂/∂{names[name]} expected {fmt(want[name])}, got {fmt(got[name])}",
                   diagnosis="wrong-gradient")


def _close(got: list, want: list) -> bool:
    """Equal up to float32's rounding in the student's forward and backward passes (~1e-6 relative here)."""
    return all(within(g, w, tolerance(torch.float32, float(w.abs().max()) + 1.0, 256)) for g, w in zip(got, want))


def _check_loss(k: int, logged, loss: float, after, theta, minibatch: tuple, whole: tuple) -> None:
    value = as_number(logged)
    # float32 rounding of a mean of ≤ 8 log-likelihoods is ~1e-6; one Adam step changes the loss by ~1e-3 or more.
    atol = tolerance(torch.float32, abs(loss) + 1.0, 16)
    if value is not None and within(value, loss, atol):
        return
    if value is not None and within(value, _loss_and_gradient(after, *minibatch)[0], atol):
        raise Mismatch(f"train_policy: losses[{k}] = {value:.6g} is the minibatch's loss AFTER step {k} (at the "
                       f"parameters the step produced); log the loss the step was computed from, {loss:.6g}",
                       diagnosis="loss-logged-after-step")
    if value is not None and within(value, _loss_and_gradient(theta, *whole)[0], atol):
        raise Mismatch(f"train_policy: losses[{k}] = {value:.6g} is bc_loss on the whole buffer: draw a minibatch "
                       "of cfg.train_batch_size pairs at every step", diagnosis="whole-buffer-as-batch")
    raise Mismatch(f"train_policy: losses[{k}] is {describe(logged)}, expected the loss of step {k}'s minibatch at the "
                   f"parameters before that step, {loss:.6g}", diagnosis="wrong-loss-logged")
