"""Variants of hw2/policy_gradient.py: policy_gradient, optimal_baseline, importance_weights,
off_policy_policy_gradient."""

from instructor.variants import Variant

M = "hw2/policy_gradient.py"
REF = ("estimators_match_reference",)

BUGGY = [
    # ---------------------------------------------------------------- policy_gradient
    Variant("pg_sign_flipped", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            params = list(policy.parameters())
            loss = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                loss = loss - (logp * q.detach()).sum()
            return list(torch.autograd.grad(loss / len(trajectories), params))
        """, ("pg_unbiased_full_return", "pg_reward_to_go"), reason="sign is flipped", diagnosis="sign-flipped"),
    Variant("pg_sign_flipped_continuous_actions", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            params = list(policy.parameters())
            loss = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                loss = loss - (logp * q.detach()).sum()
            return list(torch.autograd.grad(loss / len(trajectories), params))
        """, ("pg_gaussian_monte_carlo",), reason="probability ≤ 7.9e-07"),
    Variant("pg_log_std_not_differentiated", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            # treats every parameter except the first two as constant (e.g. log_std frozen)
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                surrogate = surrogate + (logp * q.detach()).sum()
            grads = list(torch.autograd.grad(surrogate / len(trajectories), params))
            return grads[:2] + [torch.zeros_like(p) for p in params[2:]]
        """, ("pg_gaussian_monte_carlo",), reason="log_std"),
    Variant("pg_mean_over_time_steps", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            params = list(policy.parameters())
            terms = []
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                terms.append(logp * q.detach())
            return list(torch.autograd.grad(torch.cat(terms).mean(), params))
        """, ("pg_unbiased_full_return", "pg_reward_to_go", "pg_gaussian_monte_carlo") + REF, diagnoses={"pg_reward_to_go": "averaged-over-time-steps", "pg_unbiased_full_return": "averaged-over-time-steps"}),
    Variant("pg_reward_to_go_ignored", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                surrogate = surrogate + (logp * q.detach()).sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("pg_reward_to_go",) + REF, diagnoses={"pg_reward_to_go": "reward-to-go-ignored"}),
    Variant("pg_reward_to_go_discounted_from_start", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                T = traj.rewards.shape[0]
                disc = gamma ** torch.arange(T, dtype=traj.rewards.dtype)
                if reward_to_go:
                    q = torch.flip(torch.cumsum(torch.flip(disc * traj.rewards, [0]), 0), [0])
                else:
                    q = discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                surrogate = surrogate + (logp * q.detach()).sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("pg_reward_to_go",), reason="Nota & Thomas", diagnosis="reward-to-go-discounted-from-start"),
    Variant("pg_baseline_added", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q + baseline(traj.observations)
                surrogate = surrogate + (logp * q.detach()).sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("pg_baseline",) + REF, diagnoses={"pg_baseline": "baseline-added"}),
    Variant("pg_baseline_not_detached", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                adv = q.detach()
                if baseline is not None:
                    adv = adv - baseline(traj.observations)  # the critic's output, still attached to θ
                surrogate = surrogate + (logp * adv).sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params, allow_unused=True))
        """, ("pg_baseline",), reason="shares the policy's parameters", diagnosis="gradient-through-baseline"),
    Variant("pg_grad_accumulates_across_calls", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                surrogate = surrogate + (logp * q.detach()).sum()
            (surrogate / len(trajectories)).backward()
            return [p.grad.clone() for p in policy.parameters()]
        """, ("pg_batch_mean",), reason="state carried over between calls", diagnosis="state-carried-over"),
    Variant("pg_grad_accumulates_seen_in_expectation", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                surrogate = surrogate + (logp * q.detach()).sum()
            (surrogate / len(trajectories)).backward()
            return [p.grad.clone() for p in policy.parameters()]
        """, ("pg_unbiased_full_return", "pg_reward_to_go", "pg_baseline"), reason="state carried over between calls", diagnosis="state-carried-over"),
    Variant("pg_first_trajectory_only", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            traj = trajectories[0]
            logp = policy(traj.observations).log_prob(traj.actions)
            q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
            if baseline is not None:
                q = q - baseline(traj.observations)
            return list(torch.autograd.grad((logp * q.detach()).sum(), list(policy.parameters())))
        """, ("pg_batch_mean",) + REF, diagnoses={"pg_batch_mean": "batch-not-mean-of-trajectories"}),
    Variant("pg_sum_over_trajectories", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                surrogate = surrogate + (logp * q.detach()).sum()
            return list(torch.autograd.grad(surrogate, params))
        """, ("pg_batch_mean", "pg_gaussian_monte_carlo"), diagnoses={"pg_batch_mean": "batch-not-mean-of-trajectories", "pg_gaussian_monte_carlo": "summed-over-trajectories"}),
    Variant("pg_total_log_prob_times_total_q", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            # multiplies the trajectory's total log-probability by every Q̂_t (not per step)
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                surrogate = surrogate + logp.sum() * q.detach().sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("pg_unbiased_full_return", "pg_reward_to_go")),
    Variant("pg_baseline_only_with_reward_to_go", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                if reward_to_go:
                    q = discounted_reward_to_go(traj.rewards, gamma)
                    if baseline is not None:
                        q = q - baseline(traj.observations)
                else:
                    q = discounted_return(traj.rewards, gamma)  # the baseline forgotten on this branch
                surrogate = surrogate + (logp * q.detach()).sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("pg_baseline",)),
    Variant("pg_normalises_advantages_per_trajectory", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            # advantage normalisation is a training heuristic; inside the estimator it changes E[ĝ]
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                q = (q - q.mean()) / (q.std(unbiased=False) + 1e-8)
                surrogate = surrogate + (logp * q.detach()).sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("pg_unbiased_full_return", "pg_reward_to_go"), diagnoses={"pg_unbiased_full_return": "gradient-is-zero"}),
    # Called through a batch of calls (Sandbox.map), whose repeat-the-first-call check must not mistake two equal
    # numpy arrays for state carried over: the failure names the type.
    Variant("pg_returns_numpy_arrays", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                surrogate = surrogate + (logp * q.detach()).sum()
            return [g.numpy() for g in torch.autograd.grad(surrogate / len(trajectories), params)]
        """, ("pg_unbiased_full_return", "pg_batch_mean") + REF, reason="numpy array", diagnosis="not-a-tensor"),
    # ---------------------------------------------------------------- optimal_baseline
    Variant("optimal_baseline_not_squared", M, """
        def optimal_baseline(score_sums, returns):
            num = (score_sums * returns[:, None]).sum(0)
            den = score_sums.sum(0)
            return torch.where(den != 0, num / torch.where(den != 0, den, torch.ones_like(den)), torch.zeros_like(den))
        """, ("optimal_baseline_formula", "optimal_baseline_variance"), diagnoses={"optimal_baseline_variance": "not-variance-minimising"}),
    Variant("optimal_baseline_mean_return", M, """
        def optimal_baseline(score_sums, returns):
            return returns.mean().expand(score_sums.shape[1]).clone()
        """, ("optimal_baseline_variance",), reason="mean-return baseline increases", diagnosis="not-variance-minimising"),
    Variant("optimal_baseline_nan_for_zero_column", M, """
        def optimal_baseline(score_sums, returns):
            g2 = score_sums ** 2
            return (g2 * returns[:, None]).sum(0) / g2.sum(0)
        """, ("optimal_baseline_formula",), reason="nan", diagnosis="nan-where-score-is-zero"),
    Variant("optimal_baseline_denominator_forgotten", M, """
        def optimal_baseline(score_sums, returns):
            return (score_sums ** 2 * returns[:, None]).mean(0)
        """, ("optimal_baseline_formula", "optimal_baseline_variance"), diagnoses={"optimal_baseline_variance": "not-variance-minimising"}),
    # ε "for stability": invisible where Σ_i g_id² is large, but the score of a parameter can be small (a
    # policy's late layers, a nearly deterministic action), and there b* is pulled towards 0
    Variant("optimal_baseline_epsilon_in_denominator", M, """
        def optimal_baseline(score_sums, returns):
            g2 = score_sums ** 2
            return (g2 * returns[:, None]).sum(0) / (g2.sum(0) + 1e-8)
        """, ("optimal_baseline_formula",) + REF, diagnoses={"optimal_baseline_formula": "epsilon-in-denominator"}),
    Variant("optimal_baseline_denominator_clamped", M, """
        def optimal_baseline(score_sums, returns):
            g2 = score_sums ** 2
            return (g2 * returns[:, None]).sum(0) / g2.sum(0).clamp(min=1e-6)
        """, ("optimal_baseline_formula",), diagnosis="epsilon-in-denominator"),
    # ---------------------------------------------------------------- importance_weights
    Variant("iw_inverted", M, """
        def importance_weights(target_log_probs, behavior_log_probs, per_decision=False):
            log_ratio = behavior_log_probs - target_log_probs
            return torch.exp(torch.cumsum(log_ratio, 0)) if per_decision else torch.exp(log_ratio.sum())
        """, ("importance_weights", "importance_sampling_expectation")),
    Variant("iw_not_cumulative", M, """
        def importance_weights(target_log_probs, behavior_log_probs, per_decision=False):
            log_ratio = target_log_probs - behavior_log_probs
            return torch.exp(log_ratio) if per_decision else torch.exp(log_ratio.sum())
        """, ("importance_weights",)),
    Variant("iw_detached", M, """
        def importance_weights(target_log_probs, behavior_log_probs, per_decision=False):
            log_ratio = (target_log_probs - behavior_log_probs).detach()
            return torch.exp(torch.cumsum(log_ratio, 0)) if per_decision else torch.exp(log_ratio.sum())
        """, ("importance_weights_grad",), reason="no gradient", diagnosis="no-gradient"),
    Variant("iw_mean_of_ratios", M, """
        def importance_weights(target_log_probs, behavior_log_probs, per_decision=False):
            ratios = torch.exp(target_log_probs - behavior_log_probs)
            if per_decision:
                return torch.cumsum(ratios, 0) / torch.arange(1, ratios.shape[0] + 1, dtype=ratios.dtype)
            return ratios.mean()
        """, ("importance_weights",)),
    Variant("iw_naive_products", M, """
        def importance_weights(target_log_probs, behavior_log_probs, per_decision=False):
            p, q = torch.exp(target_log_probs), torch.exp(behavior_log_probs)
            if per_decision:
                return torch.cumprod(p, 0) / torch.cumprod(q, 0)
            return torch.prod(p) / torch.prod(q)
        """, ("importance_weights",), reason="non-finite", diagnosis="weights-underflow"),
    Variant("iw_clipped_like_ppo", M, """
        def importance_weights(target_log_probs, behavior_log_probs, per_decision=False):
            # clipping each ratio "for stability" (PPO's trick) biases the estimate
            ratios = torch.exp(target_log_probs - behavior_log_probs).clamp(0.8, 1.2)
            if per_decision:
                return torch.cumprod(ratios, 0)
            return torch.prod(ratios)
        """, ("importance_weights",)),
    Variant("iw_returns_numpy", M, """
        def importance_weights(target_log_probs, behavior_log_probs, per_decision=False):
            log_w = torch.cumsum(target_log_probs - behavior_log_probs, 0)
            return (log_w if per_decision else log_w[-1]).exp().detach().numpy()
        """, ("importance_weights", "importance_sampling_expectation"), reason="numpy array",
            diagnosis="not-a-tensor"),
    # ---------------------------------------------------------------- off_policy_policy_gradient
    Variant("off_policy_per_decision_ignored", M, """
        def off_policy_policy_gradient(policy, trajectories, gamma, per_decision=False):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                w = importance_weights(logp.detach(), traj.behavior_log_probs)
                surrogate = surrogate + w * logp.sum() * discounted_return(traj.rewards, gamma)[0]
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("off_policy_unbiased",), reason="per_decision=True"),
    Variant("off_policy_per_decision_weights_exclusive", M, """
        def off_policy_policy_gradient(policy, trajectories, gamma, per_decision=False):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                T = logp.shape[0]
                w = importance_weights(logp.detach(), traj.behavior_log_probs, per_decision)
                if per_decision:  # the weight of the actions BEFORE t' only: r_{t'} also depends on a_{t'}
                    w = torch.cat([w.new_ones(1), w[:-1]])
                disc_r = gamma ** torch.arange(T, dtype=logp.dtype) * traj.rewards.to(logp.dtype)
                if per_decision:
                    coef = torch.flip(torch.cumsum(torch.flip(disc_r * w, [0]), 0), [0])
                else:
                    coef = (w * disc_r.sum()).expand(T)
                surrogate = surrogate + (logp * coef).sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("off_policy_unbiased",) + REF),
    Variant("off_policy_weight_differentiated_too", M, """
        def off_policy_policy_gradient(policy, trajectories, gamma, per_decision=False):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                T = logp.shape[0]
                w = importance_weights(logp, traj.behavior_log_probs, per_decision)  # not detached
                disc_r = gamma ** torch.arange(T, dtype=logp.dtype) * traj.rewards
                if per_decision:
                    coef = torch.flip(torch.cumsum(torch.flip(disc_r * w, [0]), 0), [0])
                else:
                    coef = w * disc_r.sum()
                surrogate = surrogate + (logp * coef).sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("off_policy_unbiased",) + REF),
    Variant("off_policy_discount_restarts", M, """
        def off_policy_policy_gradient(policy, trajectories, gamma, per_decision=False):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                w = importance_weights(logp.detach(), traj.behavior_log_probs, per_decision)
                if per_decision:
                    coef = discounted_reward_to_go(traj.rewards * w, gamma)
                else:
                    coef = w * discounted_return(traj.rewards, gamma)
                surrogate = surrogate + (logp * coef.detach()).sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("off_policy_unbiased",)),
    # The batch concatenated into one long trajectory: the weights and the discount run on across the
    # trajectories' boundaries. Right on one trajectory, wrong on every batch of two or more.
    Variant("off_policy_batch_as_one_trajectory", M, """
        def off_policy_policy_gradient(policy, trajectories, gamma, per_decision=False):
            obs = torch.cat([t.observations for t in trajectories])
            acts = torch.cat([t.actions for t in trajectories])
            rewards = torch.cat([t.rewards for t in trajectories])
            lq = torch.cat([t.behavior_log_probs for t in trajectories])
            logp = policy(obs).log_prob(acts)
            T = logp.shape[0]
            w = importance_weights(logp.detach(), lq, per_decision)
            disc_r = gamma ** torch.arange(T, dtype=logp.dtype) * rewards.to(logp.dtype)
            coef = discounted_reward_to_go(disc_r * w, 1.0) if per_decision else (w * disc_r.sum()).expand(T)
            surrogate = (logp * coef).sum() / len(trajectories)
            return list(torch.autograd.grad(surrogate, list(policy.parameters())))
        """, ("off_policy_unbiased",) + REF, diagnoses={"off_policy_unbiased": "batch-as-one-trajectory"}),
    Variant("off_policy_sum_over_trajectories", M, """
        def off_policy_policy_gradient(policy, trajectories, gamma, per_decision=False):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                T = logp.shape[0]
                w = importance_weights(logp.detach(), traj.behavior_log_probs, per_decision)
                disc_r = gamma ** torch.arange(T, dtype=logp.dtype) * traj.rewards.to(logp.dtype)
                coef = discounted_reward_to_go(disc_r * w, 1.0) if per_decision else (w * disc_r.sum()).expand(T)
                surrogate = surrogate + (logp * coef).sum()
            return list(torch.autograd.grad(surrogate, params))  # no 1/N
        """, ("off_policy_unbiased",) + REF, diagnoses={"off_policy_unbiased": "summed-over-trajectories"}),
    Variant("off_policy_last_trajectory_only", M, """
        def off_policy_policy_gradient(policy, trajectories, gamma, per_decision=False):
            for traj in trajectories:  # the loop's last trajectory is all that is left
                logp = policy(traj.observations).log_prob(traj.actions)
                T = logp.shape[0]
                w = importance_weights(logp.detach(), traj.behavior_log_probs, per_decision)
                disc_r = gamma ** torch.arange(T, dtype=logp.dtype) * traj.rewards.to(logp.dtype)
                coef = discounted_reward_to_go(disc_r * w, 1.0) if per_decision else (w * disc_r.sum()).expand(T)
            return list(torch.autograd.grad((logp * coef).sum(), list(policy.parameters())))
        """, ("off_policy_unbiased",) + REF, diagnoses={"off_policy_unbiased": "one-trajectory-only"}),
    Variant("off_policy_product_of_probabilities", M, """
        def off_policy_policy_gradient(policy, trajectories, gamma, per_decision=False):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                ratio = torch.exp(logp.detach()).cumprod(0) / torch.exp(traj.behavior_log_probs).cumprod(0)
                T = logp.shape[0]
                disc = gamma ** torch.arange(T, dtype=logp.dtype)
                if per_decision:
                    terms = disc * traj.rewards * ratio
                    coef = torch.flip(torch.cumsum(torch.flip(terms, [0]), 0), [0])
                    surrogate = surrogate + (logp * coef).sum()
                else:
                    surrogate = surrogate + ratio[-1] * logp.sum() * (disc * traj.rewards).sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("off_policy_unbiased",) + REF, diagnoses={"off_policy_unbiased": "weights-underflow"}),
    # ---------------------------------------------------------------- side effects (autograder.contract)
    # The student's .grad-returning estimator: backward(), then the .grad tensors themselves, neither cleared nor
    # copied. Before every reply was copied when its call returned, a batch on the CPU read every value after the
    # last call (all of them that call's accumulated gradient) while CUDA copied each at once.
    Variant("pg_returns_the_grad_tensors", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                surrogate = surrogate + (logp * q.detach()).sum()
            (surrogate / len(trajectories)).backward()
            return [p.grad for p in policy.parameters()]
        """, ("pg_unbiased_full_return", "pg_reward_to_go", "pg_batch_mean", "pg_baseline",
              "pg_gaussian_monte_carlo") + REF, reason=".grad", diagnosis="returns-grad-buffer"),
    Variant("pg_converts_the_policy_to_float64", M, """
        import torch
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            policy.double()  # "more precision": converts the caller's policy
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations.double()).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                surrogate = surrogate + (logp * q.detach().double()).sum()
            return [g.float() for g in torch.autograd.grad(surrogate / len(trajectories), params)]
        """, ("pg_unbiased_full_return", "pg_reward_to_go", "pg_batch_mean", "pg_gaussian_monte_carlo") + REF,
            reason="converted its input policy", diagnosis="converts-input"),
    Variant("pg_gradients_in_float64", M, """
        import copy
        import torch
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            twin = copy.deepcopy(policy).double()  # a float64 copy: the caller's policy is left alone
            surrogate = 0.0
            for traj in trajectories:
                logp = twin(traj.observations.double()).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                surrogate = surrogate + (logp * q.detach().double()).sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), list(twin.parameters())))  # float64
        """, ("pg_unbiased_full_return", "pg_reward_to_go", "pg_batch_mean", "pg_gaussian_monte_carlo") + REF,
            reason="a gradient of dtype float64", diagnosis="gradient-wrong-dtype"),
    Variant("iw_sets_requires_grad_on_its_input", M, """
        import torch
        def importance_weights(target_log_probs, behavior_log_probs, per_decision=False):
            target_log_probs.requires_grad_(True)  # "so that the weights are differentiable"
            log_w = torch.cumsum(target_log_probs - behavior_log_probs, 0)
            return torch.exp(log_w) if per_decision else torch.exp(log_w[-1])
        """, ("importance_weights", "importance_sampling_expectation"), reason="switched requires_grad",
            diagnosis="input-requires-grad-changed"),
    Variant("iw_writes_into_a_buffer_it_keeps", M, """
        import torch
        _weights = torch.empty(0)
        def importance_weights(target_log_probs, behavior_log_probs, per_decision=False):
            global _weights
            log_w = torch.cumsum(target_log_probs - behavior_log_probs, 0)
            if _weights.shape != log_w.shape or _weights.dtype != log_w.dtype:
                _weights = torch.empty_like(log_w)
            torch.exp(log_w, out=_weights)  # no allocation per call
            return _weights if per_decision else _weights[-1]
        """, ("importance_weights", "importance_sampling_expectation"), reason="the same memory as an earlier call",
            diagnosis="output-shared-across-calls"),

]


CORRECT = [
    Variant("pg_autograd_per_trajectory", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            params = list(policy.parameters())
            total = [torch.zeros_like(p) for p in params]
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                adv = q if baseline is None else q - baseline(traj.observations)
                grads = torch.autograd.grad((logp * adv.detach()).sum(), params, allow_unused=True)
                total = [t + (0 if g is None else g) for t, g in zip(total, grads)]
            return [t / len(trajectories) for t in total]
        """, ("pg_unbiased_full_return", "pg_reward_to_go", "pg_batch_mean", "pg_baseline",
              "pg_gaussian_monte_carlo") + REF),
    Variant("pg_baseline_under_no_grad", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    with torch.no_grad():  # the critic is a constant of the actor's gradient
                        q = q - baseline(traj.observations)
                surrogate = surrogate + (logp * q).sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("pg_baseline", "pg_batch_mean")),
    Variant("pg_zero_grad_backward_clone", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            policy.zero_grad()
            loss = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    q = q - baseline(traj.observations)
                loss = loss - (logp * q.detach()).sum()
            (loss / len(trajectories)).backward()
            return [-p.grad.detach().clone() for p in policy.parameters()]
        """, ("pg_unbiased_full_return", "pg_reward_to_go", "pg_batch_mean", "pg_baseline",
              "pg_gaussian_monte_carlo") + REF),
    Variant("pg_vectorised_concat", M, """
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            obs = torch.cat([t.observations for t in trajectories])
            acts = torch.cat([t.actions for t in trajectories])
            fn = discounted_reward_to_go if reward_to_go else discounted_return
            q = torch.cat([fn(t.rewards, gamma) for t in trajectories])
            if baseline is not None:
                q = q - torch.cat([baseline(t.observations) for t in trajectories])
            logp = policy(obs).log_prob(acts)
            surrogate = (logp * q.detach()).sum() / len(trajectories)
            return list(torch.autograd.grad(surrogate, list(policy.parameters())))
        """, ("pg_unbiased_full_return", "pg_reward_to_go", "pg_batch_mean", "pg_baseline") + REF),
    Variant("optimal_baseline_nan_to_num", M, """
        def optimal_baseline(score_sums, returns):
            g2 = score_sums.double() ** 2
            b = (g2 * returns.double()[:, None]).sum(0) / g2.sum(0)
            return torch.nan_to_num(b, nan=0.0).to(score_sums.dtype)
        """, ("optimal_baseline_formula", "optimal_baseline_variance") + REF),
    Variant("optimal_baseline_float64_cast_back", M, """
        def optimal_baseline(score_sums, returns):
            g2 = score_sums.double() ** 2
            num, den = (g2 * returns.double()[:, None]).sum(0), g2.sum(0)
            b = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(den))
            return b.to(score_sums.dtype)
        """, ("optimal_baseline_formula", "optimal_baseline_variance") + REF),
    Variant("optimal_baseline_masked_weights", M, """
        def optimal_baseline(score_sums, returns):
            # the weights g_id² / Σ_i g_id² first, only where the column carries information
            g2 = score_sums ** 2
            den = g2.sum(0)
            b = torch.zeros_like(den)
            keep = den > 0
            weights = g2[:, keep] / den[keep]
            b[keep] = (weights * returns[:, None]).sum(0)
            return b
        """, ("optimal_baseline_formula", "optimal_baseline_variance") + REF),
    Variant("iw_float64_inside", M, """
        def importance_weights(target_log_probs, behavior_log_probs, per_decision=False):
            log_ratio = target_log_probs.double() - behavior_log_probs.double()
            w = torch.exp(torch.cumsum(log_ratio, 0)) if per_decision else torch.exp(log_ratio.sum())
            return w.to(target_log_probs.dtype)
        """, ("importance_weights", "importance_weights_grad", "importance_sampling_expectation",
              "off_policy_unbiased") + REF),
    Variant("off_policy_differentiate_weighted_return", M, """
        def off_policy_policy_gradient(policy, trajectories, gamma, per_decision=False):
            # the seed's derivation: J = E_mu[w(theta) G], so differentiate w(theta) * G directly
            params = list(policy.parameters())
            surrogate = 0.0
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                T = logp.shape[0]
                disc_r = gamma ** torch.arange(T, dtype=logp.dtype) * traj.rewards.to(logp.dtype)
                if per_decision:
                    surrogate = surrogate + (importance_weights(logp, traj.behavior_log_probs, True) * disc_r).sum()
                else:
                    surrogate = surrogate + importance_weights(logp, traj.behavior_log_probs) * disc_r.sum()
            return list(torch.autograd.grad(surrogate / len(trajectories), params))
        """, ("off_policy_unbiased",) + REF),
    Variant("off_policy_float32_loops_ratio_products", M, """
        def off_policy_policy_gradient(policy, trajectories, gamma, per_decision=False):
            # everything in float32, step by step: the weight as a running product of ratios, the
            # per-decision coefficients by a backward loop, one backward() per trajectory
            policy.zero_grad()
            for traj in trajectories:
                logp = policy(traj.observations).log_prob(traj.actions)
                ratios = torch.exp(logp.detach() - traj.behavior_log_probs)
                T = logp.shape[0]
                w, running = [], torch.ones(())
                for t in range(T):
                    running = running * ratios[t]
                    w.append(running)
                coef = []
                if per_decision:
                    acc = torch.zeros(())
                    for t in reversed(range(T)):
                        acc = acc + (gamma ** t) * traj.rewards[t] * w[t]
                        coef.append(acc)
                    coef = coef[::-1]
                else:
                    G = sum((gamma ** t) * traj.rewards[t] for t in range(T))
                    coef = [w[-1] * G] * T
                (sum(logp[t] * coef[t] for t in range(T)) / len(trajectories)).backward()
            return [p.grad.clone() for p in policy.parameters()]
        """, ("off_policy_unbiased",) + REF),
    Variant("off_policy_padded_batch_log_space", M, """
        def off_policy_policy_gradient(policy, trajectories, gamma, per_decision=False):
            # the whole batch at once: padded to the longest trajectory, masked, weights in log space
            N, T = len(trajectories), max(len(t) for t in trajectories)
            mask = torch.zeros(N, T)
            logp = torch.zeros(N, T)
            log_ratio = torch.zeros(N, T)
            disc_r = torch.zeros(N, T)
            discounts = gamma ** torch.arange(T, dtype=torch.float32)
            for i, traj in enumerate(trajectories):
                n = len(traj)
                lp = policy(traj.observations).log_prob(traj.actions)
                logp = logp.index_put((torch.full((n,), i), torch.arange(n)), lp)
                log_ratio[i, :n] = lp.detach() - traj.behavior_log_probs
                disc_r[i, :n] = discounts[:n] * traj.rewards
                mask[i, :n] = 1.0
            log_w = torch.cumsum(log_ratio, 1)  # padding adds log 1 = 0
            if per_decision:
                coef = torch.flip(torch.cumsum(torch.flip(disc_r * log_w.exp(), [1]), 1), [1])
            else:
                coef = (log_w.gather(1, (mask.sum(1).long() - 1)[:, None]).exp() * disc_r.sum(1, keepdim=True))
            surrogate = (logp * coef * mask).sum() / N
            return list(torch.autograd.grad(surrogate, list(policy.parameters())))
        """, ("off_policy_unbiased",) + REF),
    # float64 inside, on a copy of the policy, and every gradient cast back to its parameter's dtype
    Variant("pg_float64_copy_cast_back", M, """
        import copy
        import torch
        def policy_gradient(policy, trajectories, gamma, reward_to_go=True, baseline=None):
            twin = copy.deepcopy(policy).double()
            surrogate = 0.0
            for traj in trajectories:
                logp = twin(traj.observations.double()).log_prob(traj.actions)
                q = discounted_reward_to_go(traj.rewards, gamma) if reward_to_go else discounted_return(traj.rewards, gamma)
                if baseline is not None:
                    with torch.no_grad():
                        q = q - baseline(traj.observations)
                surrogate = surrogate + (logp * q.double()).sum()
            grads = torch.autograd.grad(surrogate / len(trajectories), list(twin.parameters()))
            return [g.to(p.dtype) for g, p in zip(grads, policy.parameters())]
        """, ("pg_unbiased_full_return", "pg_reward_to_go", "pg_batch_mean", "pg_baseline",
              "pg_gaussian_monte_carlo") + REF),
]
