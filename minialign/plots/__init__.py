"""Pictures: training histories, the demo's frontier and curves, and small figure helpers
for the notebooks (``from minialign.plots import plot_history, plot_curves, ...``).

* `minialign.plots.training`: `plot_history`, `plot_history_grid`, `plot_runs`,
  `plot_frontier`, `plot_run_curves`, `knob_label`, `save_figure`.
* `minialign.plots.figures`: `panels`, `decorate`, `moving_average`, `plot_curves`,
  `plot_histograms`, `plot_clipped_surrogate`, `plot_bars`.
* `minialign.plots.interactive`: `interactive_figure` and its `Slider`: a figure drawn once
  for any viewer, with sliders that redraw it in a live notebook.
"""

from .figures import (
    decorate,
    moving_average,
    panels,
    plot_bars,
    plot_clipped_surrogate,
    plot_curves,
    plot_histograms,
)
from .interactive import Slider, interactive_figure
from .training import (
    _series,  # noqa: F401 - the history reader, for frontier_curves
    knob_label,
    plot_frontier,
    plot_history,
    plot_history_grid,
    plot_run_curves,
    plot_runs,
    save_figure,
)
