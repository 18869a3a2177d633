"""Graded problems, one module per homework part, named ``<homework>_<part>.py`` (see ``autograder.homeworks``)."""

# The problems whose child builds an optimizer, by id, each with whether it is slow (skipped by --skip-slow).
# torch.optim imports torch._dynamo when the first optimizer is made (1.4 s on an idle core, 4 s on a busy one),
# so the fork server preloads it only when one of these is graded. Kept here, importable without torch, so that
# the command line can start the fork server before it imports the problems; a problem missing from it is still
# graded right, only slower (tests/test_parallel.py checks it against the problems' own flags).
TRAINING = {"hw1/train_policy_steps": False, "hw1/train_policy_matches_reference": False,
            "hw1/dagger_process": False, "hw1/dagger_matches_reference": False,
            "hw1/bc_training": True, "hw1/dagger_training": True, "hw2/cartpole_training": True}


def may_train(assignment: str = "all", problem: str | None = None, skip_slow: bool = False) -> bool:
    """Whether a grade with these command-line choices may include a problem of TRAINING."""
    if problem:
        wanted = {name.strip().split("/")[-1] for name in problem.split(",")}
        return any(pid.split("/")[-1] in wanted for pid in TRAINING)
    return any(assignment in ("all", pid.split("/")[0]) and not (slow and skip_slow) for pid, slow in TRAINING.items())
