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


def wrap_to_width(fig, text: str, fontsize: float, width_px: float) -> str:
    """``text`` wrapped so that every line, drawn at ``fontsize`` points on ``fig``, is at most ``width_px``
    wide (measured with the figure's renderer, not estimated from a character count)."""
    probe = fig.text(0, 0, "", fontsize=fontsize)
    renderer = fig.canvas.get_renderer()

    def width(s: str) -> float:
        probe.set_text(s)
        return probe.get_window_extent(renderer).width

    lines: list[str] = []
    try:
        for para in text.split("\n"):
            words, cur = para.split(" "), ""
            for w in words:
                cand = f"{cur} {w}" if cur else w
                if cur and width(cand) > width_px:
                    lines.append(cur)
                    cur = w
                else:
                    cur = cand
            while len(cur) > 1 and width(cur) > width_px:  # a word longer than the line: break it
                k = len(cur) - 1
                while k > 1 and width(cur[:k]) > width_px:
                    k -= 1
                lines.append(cur[:k])
                cur = cur[k:]
            lines.append(cur)
    finally:
        probe.remove()
    return "\n".join(lines)


FOOTNOTE_PT = 8.5
PROVENANCE_PT = 8.0


def footnote(fig, text: str, provenance: str = "") -> None:
    """Small grey text along the bottom of the figure (method, skipped series), then the ``provenance`` line
    (where the numbers came from), each wrapped to the figure's width as measured by the renderer; the axes
    make room. Every line stays inside the canvas."""
    if not text and not provenance:
        return
    width_px = fig.get_figwidth() * fig.dpi * 0.98
    y = 0.006
    blocks = [(provenance, PROVENANCE_PT, "#555555", "italic"), (text, FOOTNOTE_PT, "#333333", "normal")]
    for body, size, colour, style in blocks:
        if not body:
            continue
        wrapped = wrap_to_width(fig, body, size, width_px)
        t = fig.text(0.01, y, wrapped, fontsize=size, color=colour, va="bottom", ha="left", style=style,
                     linespacing=1.25)
        t.set_gid("provenance" if body is provenance else "footnote")
        y += (t.get_window_extent(fig.canvas.get_renderer()).height + 4) / (fig.get_figheight() * fig.dpi)
    fig.get_layout_engine().set(rect=(0, y, 1, 1 - y))
