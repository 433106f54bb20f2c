"""Charts as plain terminal text, for the CLI (plotext is the front ends' only: tui/)."""

from __future__ import annotations


def lr_curve(
    lrs: list[float],
    losses: list[float],
    suggestion: float,
    width: int = 80,
    height: int = 20,
    colour: bool = True,
) -> str:
    """An LR range test: smoothed loss against lr (log scale), the suggested lr marked.
    `colour = False` (a pipe, a file): plain text with no escape codes. With colour, the
    terminal's own background (plotext's own theme paints a white one)."""
    import plotext as plt

    plt.clear_figure()
    plt.theme("clear")
    plt.plot_size(width, height)
    plt.xscale("log")
    plt.plot(lrs, losses, marker="braille")
    plt.vline(suggestion)
    plt.title(f"LR range test: suggested lr {suggestion:.2e}")
    plt.xlabel("lr")
    plt.ylabel("loss (smoothed)")
    out: str = plt.build()
    return out if colour else str(plt.uncolorize(out))
