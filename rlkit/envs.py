"""``make``: gymnasium's ``gym.make`` without MuJoCo's model-compiler deprecation notices.

gymnasium's own HalfCheetah model uses a compiler attribute that MuJoCo 3 deprecates, so
every HalfCheetah environment printed ``WARNING: compiler attribute 'settotalmass' is
deprecated ...`` on stderr and appended it to ``MUJOCO_LOG.TXT`` in the working directory.
The notice is about gymnasium's file, not the student's code, and says nothing the student can
act on. While an environment is built, MuJoCo's warnings go to a handler of ours: the
deprecation notices are dropped, any other warning is re-issued as a Python ``RuntimeWarning``
(so nothing else is hidden). Stepping is untouched: warnings raised while simulating (NaN in
the state, contact buffer full) keep MuJoCo's own handling.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator

import gymnasium as gym

# MuJoCo's wording for deprecated model attributes: "compiler attribute 'x' is deprecated ..."
DEPRECATION_NOTICE = re.compile(r"\battribute '[^']+' is deprecated\b")


def _route(message: str) -> None:
    if DEPRECATION_NOTICE.search(message):
        return
    warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)


@contextlib.contextmanager
def mujoco_compiler_warnings_routed() -> Iterator[None]:
    """Within the block, MuJoCo's warnings go to ``_route``; the previous handler is restored."""
    try:
        import mujoco
    except ImportError:  # no MuJoCo installed: nothing to route
        yield
        return
    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(_route)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def make(env_id: str, **kwargs) -> gym.Env:
    """``gym.make(env_id, **kwargs)``, with MuJoCo's deprecation notices dropped while it builds."""
    with mujoco_compiler_warnings_routed():
        return gym.make(env_id, **kwargs)
