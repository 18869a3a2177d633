"""Training the hw1 MuJoCo experts shipped in ``rlkit/experts`` (instructor side).

``python -m instructor.experts.train --env Hopper-v5`` (see ``train.py``). The students'
side, ``rlkit.experts`` (``ExpertPolicy``, ``load_expert``, ``load_demonstrations``), needs
none of this.
"""
