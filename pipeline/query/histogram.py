"""The token-frequency histogram as a PNG: counts per token value, and the rank-frequency curve (log-log).

Uses matplotlib's object API with the Agg canvas, so no global backend is switched (no import-time side effect)
and no display is needed.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.query.stats import TokenHistogram


def histogram_png(histogram: TokenHistogram, title: str, dpi: int = 100) -> bytes:
    """PNG bytes of two panels: count per token value, and counts sorted by rank (Zipf-style, log-log)."""
    figure = Figure(figsize=(11, 4), layout="constrained")
    FigureCanvasAgg(figure)
    by_value, by_rank = figure.subplots(1, 2)
    by_value.bar(histogram.values, histogram.counts, width=1.0, color="tab:blue", linewidth=0)
    by_value.set(xlabel="token value", ylabel="count", title="count per token value")
    ranked = np.sort(histogram.counts)[::-1]
    if ranked.size:
        by_rank.loglog(np.arange(1, ranked.size + 1), ranked, color="tab:orange")
    by_rank.set(xlabel="rank", ylabel="count", title=f"rank-frequency ({histogram.distinct} distinct values)")
    figure.suptitle(f"{title}: {int(histogram.counts.sum()):,} tokens, {histogram.entropy_bits:.2f} bits/token")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
