"""Where things live in a checkout of the kit."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
STARTER = ROOT / "starter"
