"""Variants of hw2/returns.py: discounted_return, discounted_reward_to_go, generalized_advantages."""

from instructor.variants import Variant

M = "hw2/returns.py"
RTG = ("reward_to_go", "returns_match_reference")
RET = ("discounted_return", "returns_match_reference")
GAE = ("gae", "returns_match_reference")

BUGGY = [
    # ---------------------------------------------------------------- discounted_return
    Variant("return_undiscounted", M, """
        def discounted_return(rewards, gamma):
            return rewards.sum().expand(rewards.shape[0]).clone()
        """, RET, diagnosis="undiscounted"),
    Variant("return_scalar", M, """
        import torch
        def discounted_return(rewards, gamma):
            t = torch.arange(rewards.shape[0], dtype=rewards.dtype)
            return (gamma ** t * rewards).sum()
        """, RET, reason="shape"),
    Variant("return_discount_from_one", M, """
        import torch
        def discounted_return(rewards, gamma):
            t = torch.arange(1, rewards.shape[0] + 1, dtype=rewards.dtype)
            return (gamma ** t * rewards).sum().expand(rewards.shape[0]).clone()
        """, RET, diagnosis="discounted-from-one"),
    Variant("return_is_reward_to_go", M, """
        def discounted_return(rewards, gamma):
            return discounted_reward_to_go(rewards, gamma)
        """, RET, diagnosis="return-is-reward-to-go"),
    Variant("return_numpy", M, """
        import numpy as np
        def discounted_return(rewards, gamma):
            r = rewards.numpy()
            return np.full(len(r), sum(gamma ** t * x for t, x in enumerate(r)))
        """, ("discounted_return",), reason="numpy"),
    # ---------------------------------------------------------------- reward-to-go
    Variant("rtg_discount_from_start", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            T = rewards.shape[0]
            out = torch.zeros_like(rewards)
            for t in range(T):
                out[t] = sum(gamma ** tp * rewards[tp] for tp in range(t, T))
            return out
        """, RTG, diagnosis="reward-to-go-discounted-from-start"),
    Variant("rtg_fft_convolution_left_complex", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            # Q̂ = the rewards (reversed) convolved with γ^k, by FFT; the imaginary part is never dropped (.real)
            T = rewards.shape[0]
            kernel = gamma ** torch.arange(T, dtype=torch.float64)
            spectrum = torch.fft.fft(rewards.flip(0).double(), 2 * T) * torch.fft.fft(kernel, 2 * T)
            return torch.fft.ifft(spectrum)[:T].flip(0)
        """, RTG, reason="complex128"),
    Variant("rtg_undiscounted", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            return torch.flip(torch.cumsum(torch.flip(rewards, [0]), 0), [0])
        """, RTG, diagnosis="undiscounted"),
    Variant("rtg_forward_cumsum", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            out = torch.zeros_like(rewards)
            running = 0.0
            for t in range(rewards.shape[0]):
                running = running * gamma + rewards[t]
                out[t] = running
            return out
        """, RTG, diagnosis="reward-to-go-forward"),
    Variant("rtg_excludes_current_reward", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            out = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                out[t] = running
                running = rewards[t] + gamma * running
            return out
        """, RTG, diagnosis="excludes-current-reward"),
    Variant("rtg_extra_discount", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            out = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = gamma * (rewards[t] + running)
                out[t] = running
            return out
        """, RTG),
    Variant("rtg_in_place", M, """
        def discounted_reward_to_go(rewards, gamma):
            for t in reversed(range(rewards.shape[0] - 1)):
                rewards[t] += gamma * rewards[t + 1]
            return rewards
        """, ("reward_to_go",), reason="in place", diagnosis="modifies-input"),
    Variant("rtg_float64_out", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            out = torch.zeros(rewards.shape[0], dtype=torch.float64)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = float(rewards[t]) + gamma * running
                out[t] = running
            return out
        """, ("reward_to_go",), reason="dtype"),
    Variant("rtg_column", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            out = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = rewards[t] + gamma * running
                out[t] = running
            return out[:, None]
        """, RTG, reason="shape"),
    Variant("rtg_is_full_return", M, """
        def discounted_reward_to_go(rewards, gamma):
            return discounted_return(rewards, gamma)
        """, RTG, diagnosis="full-return-at-every-step"),
    # ---------------------------------------------------------------- GAE
    Variant("gae_truncation_is_terminal", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            next_values = torch.cat([values[1:-1], values.new_zeros(1)])
            deltas = rewards + gamma * next_values - values[:-1]
            adv = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = deltas[t] + gamma * lam * running
                adv[t] = running
            return adv
        """, GAE + ("gae_lambda_one",), diagnoses={"gae": "truncation-as-terminal"}),
    Variant("gae_ignores_terminated", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            deltas = rewards + gamma * values[1:] - values[:-1]
            adv = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = deltas[t] + gamma * lam * running
                adv[t] = running
            return adv
        """, GAE + ("gae_lambda_one",), diagnoses={"gae": "bootstraps-past-terminal", "returns_match_reference": "bootstraps-past-terminal"}),
    Variant("gae_gamma_only_in_recursion", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            v_next = values[1:].clone()
            if terminated:
                v_next[-1] = 0
            deltas = rewards + gamma * v_next - values[:-1]
            adv = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = deltas[t] + gamma * running
                adv[t] = running
            return adv
        """, GAE, diagnosis="lambda-ignored"),
    Variant("gae_lambda_only_in_recursion", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            v_next = values[1:].clone()
            if terminated:
                v_next[-1] = 0
            deltas = rewards + gamma * v_next - values[:-1]
            adv = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = deltas[t] + lam * running
                adv[t] = running
            return adv
        """, GAE + ("gae_lambda_one",)),
    Variant("gae_delta_sign", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            v_next = values[1:].clone()
            if terminated:
                v_next[-1] = 0
            deltas = rewards + gamma * values[:-1] - v_next
            adv = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = deltas[t] + gamma * lam * running
                adv[t] = running
            return adv
        """, GAE + ("gae_lambda_one",), diagnoses={"gae": "delta-sign-flipped", "returns_match_reference": "delta-sign-flipped"}),
    Variant("gae_normalised_inside", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            v_next = values[1:].clone()
            if terminated:
                v_next[-1] = 0
            deltas = rewards + gamma * v_next - values[:-1]
            adv = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = deltas[t] + gamma * lam * running
                adv[t] = running
            return (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)
        """, GAE),
    Variant("gae_forward_recursion", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            v_next = values[1:].clone()
            if terminated:
                v_next[-1] = 0
            deltas = rewards + gamma * v_next - values[:-1]
            adv = torch.zeros_like(rewards)
            running = 0.0
            for t in range(rewards.shape[0]):
                running = deltas[t] + gamma * lam * running
                adv[t] = running
            return adv
        """, GAE, diagnosis="gae-forward-recursion"),
    Variant("gae_lambda_ignored", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            # "advantage = reward-to-go minus the baseline": the λ = 1 estimator whatever λ is
            T = rewards.shape[0]
            bootstrap = 0.0 if terminated else values[-1]
            out = torch.zeros_like(rewards)
            running = bootstrap
            for t in reversed(range(T)):
                running = rewards[t] + gamma * running
                out[t] = running - values[t]
            return out
        """, GAE, diagnosis="lambda-ignored"),
    Variant("rtg_normalised_inside", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            # advantage normalisation belongs to the batch, not to one trajectory's Q̂
            out = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = rewards[t] + gamma * running
                out[t] = running
            return (out - out.mean()) / (out.std(unbiased=False) + 1e-8)
        """, RTG),
    Variant("rtg_list_not_reversed", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            # accumulated backwards into a list, which is then in reverse time order
            out, running = [], 0.0
            for t in reversed(range(rewards.shape[0])):
                running = rewards[t] + gamma * running
                out.append(running)
            return torch.stack(out)
        """, RTG, diagnosis="reward-to-go-reversed"),
    Variant("rtg_cumsum_divided_by_discounts", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            # Σ_{t'≥t} γ^{t'} r_{t'} / γ^t: exact on paper, 0/0 at γ = 0 and error blown up by 1/γ^t
            discounts = gamma ** torch.arange(rewards.shape[0], dtype=torch.float64)
            tail = torch.flip(torch.cumsum(torch.flip(discounts * rewards.double(), [0]), 0), [0])
            return (tail / discounts).to(rewards.dtype)
        """, ("reward_to_go",), reason="non-finite"),
    Variant("gae_returns_the_lambda_return", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            # A_t + V(s_t) is the critic's TD(λ) target, not the advantage
            next_values = values[1:].clone()
            if terminated:
                next_values[-1] = 0.0
            deltas = rewards + gamma * next_values - values[:-1]
            adv = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = deltas[t] + gamma * lam * running
                adv[t] = running
            return adv + values[:-1]
        """, GAE, diagnosis="lambda-return-not-advantage"),
    Variant("gae_delta_subtracts_the_next_value", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            next_values = values[1:].clone()
            if terminated:
                next_values[-1] = 0.0
            deltas = rewards + gamma * next_values - values[1:]
            adv = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = deltas[t] + gamma * lam * running
                adv[t] = running
            return adv
        """, GAE, diagnosis="delta-baseline-off-by-one"),
    # ---------------------------------------------------------------- side effects (autograder.contract)
    Variant("rtg_gamma_zero_returns_the_rewards", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            if gamma == 0:
                return rewards  # Q̂_t = r_t: nothing to compute
            out = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = rewards[t] + gamma * running
                out[t] = running
            return out
        """, ("reward_to_go",), reason="shares memory with its input rewards", diagnosis="output-aliases-input"),
    Variant("return_gamma_zero_a_view_of_the_first_reward", M, """
        import torch
        def discounted_return(rewards, gamma):
            if gamma == 0:
                return rewards[:1].expand(rewards.shape[0])  # γ^0 r_0 at every step
            discounts = gamma ** torch.arange(rewards.shape[0], dtype=torch.float64)
            return (discounts * rewards.double()).sum().repeat(rewards.shape[0]).to(rewards.dtype)
        """, RET, reason="shares memory with its input rewards", diagnosis="output-aliases-input"),
    Variant("rtg_built_with_requires_grad", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            out, running = [], 0.0
            for r in reversed(rewards.tolist()):
                running = r + gamma * running
                out.append(running)
            # "so that the policy gradient can flow through it"
            return torch.tensor(out[::-1], dtype=rewards.dtype, requires_grad=True)
        """, RTG, reason="requires grad", diagnosis="constant-requires-grad"),

]

CORRECT = [
    Variant("return_vectorised", M, """
        import torch
        def discounted_return(rewards, gamma):
            t = torch.arange(rewards.shape[0], device=rewards.device)
            return ((gamma ** t).to(rewards.dtype) * rewards).sum().repeat(rewards.shape[0])
        """, RET),
    Variant("rtg_numpy_float64_loop", M, """
        import numpy as np
        import torch
        def discounted_reward_to_go(rewards, gamma):
            r = rewards.detach().cpu().numpy().astype(np.float64)
            out = np.zeros_like(r)
            running = 0.0
            for t in reversed(range(len(r))):
                running = r[t] + gamma * running
                out[t] = running
            return torch.as_tensor(out, dtype=rewards.dtype, device=rewards.device)
        """, RTG),
    Variant("rtg_discount_matrix", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            T = rewards.shape[0]
            i = torch.arange(T, device=rewards.device)
            lag = (i[None, :] - i[:, None])
            weights = torch.where(lag >= 0, torch.tensor(gamma, dtype=torch.float64) ** lag.clamp(min=0), 0.0)
            return (weights @ rewards.double()).to(rewards.dtype)
        """, RTG),
    Variant("rtg_float32_loop", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            out = torch.empty_like(rewards)
            running = torch.zeros((), dtype=rewards.dtype)
            for t in reversed(range(rewards.shape[0])):
                running = rewards[t] + gamma * running
                out[t] = running
            return out
        """, RTG),
    Variant("gae_vectorised_matrix", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            v = values.double()
            mask = torch.ones_like(v[1:])
            if terminated:
                mask[-1] = 0.0
            deltas = rewards.double() + gamma * v[1:] * mask - v[:-1]
            T = rewards.shape[0]
            i = torch.arange(T)
            lag = i[None, :] - i[:, None]
            weights = torch.where(lag >= 0, torch.tensor(gamma * lam, dtype=torch.float64) ** lag.clamp(min=0), 0.0)
            return (weights @ deltas).to(rewards.dtype)
        """, GAE + ("gae_lambda_one",)),
    Variant("gae_next_nonterminal_loop", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            T = rewards.shape[0]
            adv = torch.zeros_like(rewards)
            lastgaelam = 0.0
            for t in reversed(range(T)):
                next_nonterminal = 0.0 if (t == T - 1 and terminated) else 1.0
                delta = rewards[t] + gamma * values[t + 1] * next_nonterminal - values[t]
                lastgaelam = delta + gamma * lam * lastgaelam
                adv[t] = lastgaelam
            return adv
        """, GAE + ("gae_lambda_one",)),
    Variant("rtg_list_reversed_at_the_end", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            out, running = [], 0.0
            for r in reversed(rewards.tolist()):
                running = r + gamma * running
                out.append(running)
            return torch.tensor(out[::-1], dtype=rewards.dtype, device=rewards.device)
        """, RTG),
    Variant("gae_via_reward_to_go_of_deltas", M, """
        import torch
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            # GAE is the (γλ)-discounted reward-to-go of the TD errors
            bootstrap = values[-1] * (0.0 if terminated else 1.0)
            deltas = rewards + gamma * torch.cat([values[1:-1], bootstrap.reshape(1)]) - values[:-1]
            return discounted_reward_to_go(deltas, gamma * lam)
        """, GAE + ("gae_lambda_one",)),
    Variant("rtg_gamma_zero_returns_a_clone", M, """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            if gamma == 0:
                return rewards.clone()  # Q̂_t = r_t, in a tensor of its own
            out = torch.zeros_like(rewards)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = rewards[t] + gamma * running
                out[t] = running
            return out
        """, RTG),
    Variant("rtg_under_no_grad", M, """
        import torch
        @torch.no_grad()
        def discounted_reward_to_go(rewards, gamma):
            out = torch.empty(rewards.shape[0], dtype=torch.float64, device=rewards.device)
            running = 0.0
            for t in reversed(range(rewards.shape[0])):
                running = float(rewards[t]) + gamma * running
                out[t] = running
            return out.to(rewards.dtype)
        """, RTG),

]
