"""Figures a reader can change: ``interactive_figure(draw, epsilon=Slider(0.2, 0.05, 0.5, 0.05))``.

The figure is drawn once at the sliders' values and shown, so a notebook committed with its
outputs keeps a plain PNG that any viewer (GitHub included) renders. In a live notebook
(JupyterLab, the browser site) with ipywidgets installed, sliders appear above it, and
letting go of one draws the figure again in place. Without ipywidgets, or outside a kernel,
it is the static figure only, so nothing here is needed to run a notebook.

How the live figure is updated: the first drawing is shown with a display id, and each
redraw replaces that output (``update_display_data``), rather than capturing the figure in
an ipywidgets ``Output`` widget, whose contents a notebook saves in widget state instead
of in the cell's outputs, where a static viewer would never find them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .figures import panels


@dataclass(frozen=True)
class Slider:
    """One knob of `interactive_figure`: a start ``value`` and the range a reader may move it over.

    ``Slider(0.2, 0.05, 0.5, 0.05)`` slides from ``low`` to ``high`` in steps of ``step`` (an
    integer slider if all four are integers); ``Slider(8, options=(1, 2, 4, 8, 16))`` steps
    through the listed values only (a log scale, say). ``label`` is shown beside the slider
    (default: the keyword it is passed as).
    """

    value: float
    low: float | None = None
    high: float | None = None
    step: float | None = None
    options: tuple | None = None
    label: str | None = None

    def __post_init__(self):
        if self.options is not None:
            if (self.low, self.high, self.step) != (None, None, None):
                raise ValueError("Slider: give either low, high, step or options, not both")
            options = tuple(self.options)
            if not options or self.value not in options:
                raise ValueError(f"Slider: value {self.value!r} is not one of options {options}")
            object.__setattr__(self, "options", options)
            return
        numbers = (self.value, self.low, self.high, self.step)
        if any(x is None for x in numbers):
            raise ValueError("Slider: give value, low, high and step (or value and options)")
        if not np.all(np.isfinite(np.asarray(numbers, dtype=float))):
            raise ValueError(f"Slider: value, low, high and step must be finite, got {numbers}")
        if not self.low < self.high or not self.step > 0:
            raise ValueError(
                f"Slider: need low < high and step > 0, got {self.low}, {self.high}, {self.step}"
            )
        if not self.low <= self.value <= self.high:
            raise ValueError(f"Slider: value {self.value} is outside [{self.low}, {self.high}]")

    def widget(self, name: str):
        """The ipywidgets slider for this knob; it reports a new value when it is let go."""
        import ipywidgets

        common = dict(
            description=self.label or name,
            continuous_update=False,  # a redraw takes a while, in the browser site seconds
            layout=ipywidgets.Layout(width="420px"),
        )
        if self.options is not None:
            return ipywidgets.SelectionSlider(options=self.options, value=self.value, **common)
        span = dict(value=self.value, min=self.low, max=self.high, step=self.step)
        if all(isinstance(x, int) for x in span.values()):
            return ipywidgets.IntSlider(**span, **common)
        decimals = max(0, -int(np.floor(np.log10(self.step))))
        return ipywidgets.FloatSlider(**span, readout_format=f".{decimals}f", **common)


def live_kernel() -> bool:
    """True where sliders can work: in a Jupyter kernel (JupyterLab, Notebook, the browser
    site's Pyodide kernel) with ipywidgets importable and matplotlib's inline backend."""
    import matplotlib

    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    kernel = getattr(get_ipython(), "kernel", None)
    return kernel is not None and "inline" in matplotlib.get_backend()


def _display(obj, **kwargs):
    """IPython's ``display`` (a seam for the tests, which run outside a kernel)."""
    from IPython.display import display

    return display(obj, **kwargs)


def interactive_figure(
    draw, *, ncols: int = 1, width: float = 5.5, height: float = 3.8, **sliders: Slider
) -> None:
    """Draw ``draw(ax, **values)`` at the sliders' values; in a live notebook, with sliders.

    ``sliders`` name the keyword arguments of ``draw``, each a `Slider`. The figure is a row
    of ``ncols`` panels of ``width`` x ``height`` inches; ``draw`` gets the one axes, or the
    array of them when ``ncols > 1``, and must draw everything on them (a redraw clears
    them first). Where `live_kernel` is False this is the figure and ``plt.show()``. In a
    live notebook the sliders are shown above the figure; letting go of one redraws it, and
    an exception in ``draw`` is printed under the sliders (a widget callback's exception
    would otherwise vanish into the kernel's log). Returns None, so a bare call on the last
    line of a cell does not show the figure a second time::

        def surrogate(ax, epsilon):
            plot_clipped_surrogate(ratios, 1.0, epsilon, ax=ax)

        interactive_figure(surrogate, epsilon=Slider(0.2, 0.05, 0.5, 0.05, label="ε"))
    """
    import matplotlib.pyplot as plt

    if not sliders:
        raise ValueError("interactive_figure: no sliders; pass e.g. epsilon=Slider(0.2, 0, 1, 0.1)")
    for name, slider in sliders.items():
        if not isinstance(slider, Slider):
            raise ValueError(f"interactive_figure: {name}={slider!r} is not a Slider")
    fig, axes = panels(ncols, width=width, height=height)
    target = axes[0] if ncols == 1 else axes
    draw(target, **{name: slider.value for name, slider in sliders.items()})
    fig.tight_layout()
    if not live_kernel():
        plt.show()
        return None
    import ipywidgets

    widgets = {name: slider.widget(name) for name, slider in sliders.items()}
    status = ipywidgets.Label()
    view = ipywidgets.VBox([*widgets.values(), status])._repr_mimebundle_()
    view["text/plain"] = f"(sliders for {', '.join(sliders)}: they move in a live notebook)"
    _display(view, raw=True)  # a viewer without widgets shows that text, not the widget repr
    handle = _display(fig, display_id=True)
    plt.close(fig)  # shown through the handle: the inline backend must not show it again

    def redraw(_change=None) -> None:
        for ax in axes:
            ax.clear()
        try:
            draw(target, **{name: w.value for name, w in widgets.items()})
            fig.tight_layout()
            status.value = ""
        except Exception as err:
            status.value = f"draw failed: {type(err).__name__}: {err}"
        handle.update(fig)

    for w in widgets.values():
        w.observe(redraw, names="value")
    return None
