"""The one figure style of the experiment scripts' learning curves."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure():
    """A headless (Agg) figure and axes, sized for a learning curve."""
    return pyplot().subplots(figsize=(7, 4.5))


def subplots_grid(n: int, width: float = 5.0, height: float = 3.6):
    """A headless figure with ``n`` panels, two per row; returns the figure and the n axes (extra cells removed)."""
    cols = 1 if n == 1 else 2
    rows = -(-n // cols)
    fig, grid = pyplot().subplots(rows, cols, figsize=(width * cols, height * rows + 0.8), squeeze=False)
    cells = [ax for row in grid for ax in row]
    for ax in cells[n:]:
        fig.delaxes(ax)
    return fig, cells[:n]


def save_figure(fig, ax, title: str, path: str | Path, legend_below: bool = False) -> None:
    """Title, grid and legend (inside, or under the axes in two columns), then write ``path`` and free the figure."""
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend_below:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    else:
        ax.legend(fontsize=8)
    fig.tight_layout()
    # a legend under the axes may be wider than the figure: grow the saved image to hold it
    fig.savefig(path, dpi=110, bbox_inches="tight" if legend_below else None)
    pyplot().close(fig)
