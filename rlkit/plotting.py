"""The one figure style of the experiment scripts' learning curves."""

from __future__ import annotations

from pathlib import Path


def new_figure():
    """A headless (Agg) figure and axes, sized for a learning curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4.5))


def save_figure(fig, ax, title: str, path: str | Path, legend_below: bool = False) -> None:
    """Title, grid and legend (inside, or under the axes in two columns), then write ``path`` and free the figure."""
    import matplotlib.pyplot as plt

    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend_below:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    else:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
