"""Chart style shared by every chart: readable in black-and-white print and for colour-blind readers.

Series are told apart by three redundant channels: colour from the Okabe-Ito palette (Okabe & Ito, "Color
Universal Design", 2008), marker shape and line style (or hatch for bars). Figures have a fixed size in
inches at ``DPI`` so a PNG is exactly ``figsize x DPI`` pixels. matplotlib is imported lazily with the Agg
backend: nothing in the simulation imports this module.
"""

from __future__ import annotations

from pathlib import Path

from infersim.core.fileio import atomic_write

#: Okabe-Ito colours, most distinct first (black last: it is the text colour).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (8, 2)))
HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
DPI = 150
WIDE = (9.0, 5.4)  # inches: 1350 x 810 px
TALL = (9.0, 9.0)  # inches: 1350 x 1350 px


def series_style(i: int) -> dict:
    """Colour, marker and line style of the ``i``-th series (cycles after 8)."""
    return {"color": OKABE_ITO[i % 8], "marker": MARKERS[i % 8], "linestyle": LINESTYLES[i % 8]}


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend with the report's rc settings."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.size": 11, "axes.titlesize": 13, "axes.labelsize": 11, "legend.fontsize": 10,
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "svg.fonttype": "none", "hatch.linewidth": 0.8,
        "text.parse_math": False,  # labels hold dollar signs: never typeset them as TeX math
    })
    return plt


def new_figure(size: tuple[float, float] = WIDE, nrows: int = 1, ncols: int = 1, **kw):
    """A figure of exactly ``size`` inches with constrained layout; returns (fig, axes)."""
    plt = pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=size, dpi=DPI, layout="constrained", squeeze=False, **kw)
    return fig, axes


def save_figure(fig, out_dir: Path, name: str) -> list[Path]:
    """Write ``<name>.png`` and ``<name>.svg`` into ``out_dir``, each atomically (temp file, then rename);
    closes the figure. Returns the two paths."""
    plt = pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for ext in ("png", "svg"):
            paths.append(atomic_write(out_dir / f"{name}.{ext}",
                                      lambda p, ext=ext: fig.savefig(p, format=ext, dpi=DPI)))
            fig.set_layout_engine("none")  # keep the layout computed for the PNG: the SVG needs no second pass
    finally:
        plt.close(fig)
    return paths


def log_axis(ax, which: str = "x") -> None:
    """A log scale labelled with plain numbers (0.01, 0.1, 1, 10) rather than powers of ten."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def footnote(fig, text: str) -> None:
    """Small grey text along the bottom of the figure (method, skipped series), wrapped to the figure's
    width; the axes make room."""
    if not text:
        return
    import textwrap

    width_chars = int(fig.get_figwidth() * 17)  # ~8.5 pt characters per inch
    text = "\n".join(textwrap.wrap(text, width_chars))
    lines = text.count("\n") + 1
    h = (0.17 * lines + 0.08) / fig.get_figheight()
    fig.get_layout_engine().set(rect=(0, h, 1, 1 - h))
    fig.text(0.01, 0.008, text, fontsize=8.5, color="#333333", va="bottom", ha="left")
