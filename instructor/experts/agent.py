"""A lean SAC / TD3 for one CPU thread: both critics in one batched module, few calls per update.

Where the time goes (measured, one torch thread): the matrix products of the MLPs, not Python.
So the update is written to do no product twice and none it does not need:

- ``TwinCritic`` holds both Q-networks as stacked weights ``[2, in, out]`` and evaluates them
  with one ``baddbmm`` per layer (one kernel for both critics, one optimiser step for both);
- the actor's loss runs the critics with *detached* weights (no weight gradients computed and
  thrown away, no ``requires_grad_`` toggling);
- the target networks move with one ``torch._foreach_lerp_`` call;
- Adam runs ``foreach`` (one fused multi-tensor step per optimiser);
- TD3 updates the actor every ``policy_delay`` critic updates.

Shapes: ``obs`` [B, obs_dim], ``act`` [B, act_dim] in [-1, 1] (the trainer rescales to the
action bounds), ``rew`` / ``done`` [B, 1]; Q-values of both critics [2, B, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # SB3's clamp of the SAC actor's log std
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass
class AgentConfig:
    algo: str = "sac"  # "sac" or "td3"
    hidden: list[int] = field(default_factory=lambda: [256, 256])  # actor and critics
    lr: float = 3e-4  # actor, critics (and SAC's temperature)
    gamma: float = 0.99
    tau: float = 0.005  # target networks: θ' ← (1 − τ) θ' + τ θ
    # SAC
    init_alpha: float = 1.0  # SB3's "auto" starts the temperature at 1
    target_entropy: float | None = None  # default −act_dim
    # TD3
    policy_delay: int = 2
    target_noise: float = 0.2
    noise_clip: float = 0.5


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no activation after the last layer


class Actor(nn.Module):
    """[Linear, ReLU]*n → Linear. SAC: outputs (mean, log_std) of a tanh-squashed Gaussian.
    TD3: outputs the pre-tanh action. Either way the deterministic action is tanh(first act_dim
    outputs), which is what ``rlkit.experts.ExpertPolicy`` computes (before rescaling)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], stochastic: bool):
        super().__init__()
        self.act_dim = act_dim
        self.stochastic = stochastic
        self.net = _mlp([obs_dim, *hidden, act_dim * (2 if stochastic else 1)])

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs)[..., : self.act_dim])

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SAC: a = tanh(μ + σ ε) and log π(a|s) [B, 1] (with the tanh change of variables)."""
        mu, log_std = self.net(obs).chunk(2, dim=-1)
        log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        eps = torch.randn_like(mu)
        u = mu + log_std.exp() * eps
        # log N(u; μ, σ) − Σ log(1 − tanh(u)²), the latter as 2 (log 2 − u − softplus(−2u)) (stable)
        logp = -0.5 * eps.square() - log_std - _HALF_LOG_2PI - 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
        return torch.tanh(u), logp.sum(-1, keepdim=True)


class TwinCritic(nn.Module):
    """Two Q-networks Q_k(s, a), k = 0, 1, evaluated together: weights [2, in, out]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], n: int = 2):
        super().__init__()
        sizes = [obs_dim + act_dim, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(a)  # nn.Linear's default initialisation, per critic
            self.weights.append(nn.Parameter(torch.empty(n, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, 1, b).uniform_(-bound, bound)))
        self.n = n

    def forward(self, obs: torch.Tensor, act: torch.Tensor, detach: bool = False, first_only: bool = False):
        """Q-values [n, B, 1]; ``detach``: no gradient to the weights (the actor's loss);
        ``first_only``: only Q_0, as [1, B, 1] (TD3's actor loss: half the work)."""
        n = 1 if first_only else self.n
        x = torch.cat([obs, act], dim=-1).expand(n, -1, -1)  # [n, B, in]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if first_only:
                w, b = w[:1], b[:1]
            if detach:
                w, b = w.detach(), b.detach()
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = x.relu()
        return x


def _adam(params, lr):
    return torch.optim.Adam(params, lr=lr, foreach=True)


class Agent(nn.Module):
    """SAC (automatic temperature, as SB3's ``ent_coef="auto"``) or TD3 (Fujimoto et al. 2018)."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: AgentConfig):
        super().__init__()
        if cfg.algo not in ("sac", "td3"):
            raise ValueError(f"algo must be 'sac' or 'td3', got {cfg.algo!r}")
        self.cfg = cfg
        self.obs_dim, self.act_dim = obs_dim, act_dim
        sac = cfg.algo == "sac"
        self.actor = Actor(obs_dim, act_dim, list(cfg.hidden), stochastic=sac)
        self.critic = TwinCritic(obs_dim, act_dim, list(cfg.hidden))
        self.critic_target = TwinCritic(obs_dim, act_dim, list(cfg.hidden))
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        if not sac:
            self.actor_target = Actor(obs_dim, act_dim, list(cfg.hidden), stochastic=False)
            self.actor_target.load_state_dict(self.actor.state_dict())
            self.actor_target.requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.init_alpha)), requires_grad=sac)
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)
        self.actor_opt = _adam(self.actor.parameters(), cfg.lr)
        self.critic_opt = _adam(self.critic.parameters(), cfg.lr)
        self.alpha_opt = _adam([self.log_alpha], cfg.lr) if sac else None
        # (source, target) parameter lists for the Polyak step
        self._src = list(self.critic.parameters()) + (list(self.actor.parameters()) if not sac else [])
        self._dst = list(self.critic_target.parameters()) + (list(self.actor_target.parameters()) if not sac else [])
        self.updates = 0

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool, noise: float = 0.1) -> torch.Tensor:
        """Action in [-1, 1] for a batch ``obs`` [B, obs_dim]."""
        if not explore:
            return self.actor.deterministic(obs)
        if self.cfg.algo == "sac":
            return self.actor.sample(obs)[0]
        a = self.actor.deterministic(obs)
        return (a + noise * torch.randn_like(a)).clamp(-1.0, 1.0)

    # ------------------------------------------------------------------ learning
    def update(self, obs, act, rew, next_obs, done) -> dict:
        """One gradient step on a batch; returns the losses as tensors (read them rarely)."""
        return self._update_sac(obs, act, rew, next_obs, done) if self.cfg.algo == "sac" else \
            self._update_td3(obs, act, rew, next_obs, done)

    def _polyak(self) -> None:
        with torch.no_grad():
            torch._foreach_lerp_(self._dst, self._src, self.cfg.tau)

    def _update_sac(self, obs, act, rew, next_obs, done) -> dict:
        cfg = self.cfg
        alpha = self.log_alpha.detach().exp()
        # critics: y = r + γ (1 − d) (min_k Q'_k(s', a') − α log π(a'|s')),  a' ~ π(·|s')
        with torch.no_grad():
            next_act, next_logp = self.actor.sample(next_obs)
            next_q = self.critic_target(next_obs, next_act).amin(0)
            y = rew + cfg.gamma * (1.0 - done) * (next_q - alpha * next_logp)
        q = self.critic(obs, act)
        critic_loss = (q - y).square().mean()  # = ½ Σ_k MSE(Q_k, y), SB3's loss
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        # actor: E[α log π(a|s) − min_k Q_k(s, a)],  a ~ π(·|s), critics held fixed
        new_act, logp = self.actor.sample(obs)
        actor_loss = (alpha * logp - self.critic(obs, new_act, detach=True).amin(0)).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        # temperature: keep the entropy near the target
        alpha_loss = -(self.log_alpha * (logp.detach().mean() + self.target_entropy))
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        self._polyak()
        self.updates += 1
        return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(), "alpha": alpha}

    def _update_td3(self, obs, act, rew, next_obs, done) -> dict:
        cfg = self.cfg
        with torch.no_grad():
            a = self.actor_target.deterministic(next_obs)
            noise = (cfg.target_noise * torch.randn_like(a)).clamp(-cfg.noise_clip, cfg.noise_clip)
            next_q = self.critic_target(next_obs, (a + noise).clamp(-1.0, 1.0)).amin(0)
            y = rew + cfg.gamma * (1.0 - done) * next_q
        q = self.critic(obs, act)
        critic_loss = (q - y).square().mean()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.updates += 1
        out = {"critic_loss": critic_loss.detach()}
        if self.updates % cfg.policy_delay == 0:
            # actor: maximise Q_0(s, μ(s)) (TD3 uses the first critic), critics held fixed
            actor_loss = -self.critic(obs, self.actor.deterministic(obs), detach=True, first_only=True).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            self._polyak()
            out["actor_loss"] = actor_loss.detach()
        return out

    # ------------------------------------------------------------------ state
    def full_state(self) -> dict:
        """Everything needed to continue training bit for bit (networks, targets, optimisers)."""
        state = {"model": self.state_dict(), "actor_opt": self.actor_opt.state_dict(),
                 "critic_opt": self.critic_opt.state_dict(), "updates": self.updates}
        if self.alpha_opt is not None:
            state["alpha_opt"] = self.alpha_opt.state_dict()
        return state

    def load_full_state(self, state: dict) -> None:
        self.load_state_dict(state["model"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        if self.alpha_opt is not None:
            self.alpha_opt.load_state_dict(state["alpha_opt"])
        self.updates = int(state["updates"])
