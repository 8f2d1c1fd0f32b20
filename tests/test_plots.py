"""The small plotting helpers the notebooks use: what they draw, and their errors."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minialign.plots import (
    Slider,
    decorate,
    interactive,
    interactive_figure,
    moving_average,
    panels,
    plot_bars,
    plot_clipped_surrogate,
    plot_curves,
    plot_histograms,
    plot_history_grid,
    plot_runs,
)
from minialign.train import History


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_panels_gives_a_flat_row_of_axes_also_for_one():
    fig, axes = panels(3, width=2.0, height=1.5)
    assert axes.shape == (3,) and np.allclose(fig.get_size_inches(), [6.0, 1.5])
    _, one = panels(1)
    assert one.shape == (1,)
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="panels: n"):
            panels(bad)


def test_decorate_sets_labels_reference_lines_scales_and_legend():
    _, ax = plt.subplots()
    ax.plot([1, 2, 3], [1, 10, 100], label="curve")
    out = decorate(
        ax, "title", "x", "y", hlines={"log 2": np.log(2)}, vlines={"": 2.0}, logx=True, logy=True
    )
    assert out is ax
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("title", "x", "y")
    assert ax.get_xscale() == ax.get_yscale() == "log"
    hline, vline = ax.lines[1], ax.lines[2]
    assert np.allclose(hline.get_ydata(), np.log(2)) and np.allclose(vline.get_xdata(), 2.0)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["curve", "log 2"]  # the unlabelled vline has no entry


def test_decorate_draws_no_legend_without_labels():
    _, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    decorate(ax, "t")
    assert ax.get_legend() is None and ax.get_xscale() == "linear"


@given(
    values=hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-1e6, 1e6)),
    k=st.integers(1, 30),
)
def test_moving_average_is_the_mean_of_each_trailing_window(values, k):
    if len(values) < k:
        with pytest.raises(ValueError, match="at least k"):
            moving_average(values, k)
        return
    expected = [values[i - k + 1 : i + 1].mean() for i in range(k - 1, len(values))]
    np.testing.assert_allclose(moving_average(values, k), expected, rtol=1e-9, atol=1e-6)


def test_moving_average_rejects_a_bad_window():
    for k in (0, 2.5):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            moving_average([1.0, 2.0, 3.0], k)


def test_plot_curves_draws_each_curve_and_smooths_against_the_window_end():
    x = np.arange(10, 20)
    y = np.arange(10.0) ** 2
    ax = plot_curves({"index": y, "pairs": (x, y)}, title="t", ylabel="y")
    first, second = ax.lines
    np.testing.assert_array_equal(first.get_xdata(), np.arange(10))
    np.testing.assert_array_equal(second.get_xdata(), x)
    assert ax.get_title() == "t" and [t.get_text() for t in ax.get_legend().get_texts()] == [
        "index",
        "pairs",
    ]
    smoothed = plot_curves({"s": (x, y)}, smooth=3).lines[0]
    np.testing.assert_array_equal(smoothed.get_xdata(), x[2:])
    np.testing.assert_allclose(smoothed.get_ydata(), moving_average(y, 3))


def test_plot_curves_errors_name_the_problem():
    with pytest.raises(ValueError, match="curves is empty"):
        plot_curves({})
    with pytest.raises(ValueError, match="'bad' has x of shape"):
        plot_curves({"bad": (np.arange(3), np.arange(4.0))})


def test_plot_histograms_counts_every_sample_on_shared_bins():
    bins = np.linspace(0, 1, 5)
    samples = {"a": [0.1, 0.2, 0.9], "b": [0.6, 0.6]}
    ax = plot_histograms(samples, bins, xlabel="value")
    heights = [p.get_height() for p in ax.patches]
    assert heights == [2, 0, 0, 1] + [0, 0, 2, 0]
    assert ax.get_xlabel() == "value" and ax.get_legend() is not None
    outline = plot_histograms(samples, bins, step=True)
    assert len(outline.patches) == 2  # one outline per sample
    with pytest.raises(ValueError, match="samples is empty"):
        plot_histograms({}, bins)


def test_plot_runs_one_panel_per_key_one_line_per_run():
    runs = {}
    for name, scale in (("a", 1.0), ("b", 2.0)):
        h = History()
        for step in range(0, 50, 10):
            h.log(step, reward=scale * step, kl=scale)
        runs[name] = h
    axes = plot_runs(runs, ["reward", "kl"], titles=["R", "K"])
    assert [ax.get_title() for ax in axes] == ["R", "K"]
    assert axes[0].get_ylabel() == "reward" and axes[1].get_xlabel() == "step"
    np.testing.assert_array_equal(axes[0].lines[1].get_ydata(), runs["b"]["reward"])
    assert all(len(ax.lines) == 2 for ax in axes)
    with pytest.raises(ValueError, match="2 keys but 1 axes"):
        plot_runs(runs, ["reward", "kl"], axes=[axes[0]])
    with pytest.raises(ValueError, match="at least one run"):
        plot_runs({}, ["reward"])


def _history(n, scale):
    h = History()
    for step in range(n):
        h.log(step, loss=scale / (step + 1), reward=scale * step)
    return h


@pytest.mark.parametrize("advantage", [1.0, -0.5])
def test_plot_clipped_surrogate_draws_the_min_of_the_two_terms(advantage):
    ratio = np.linspace(0.5, 1.5, 11)
    eps = 0.2
    zero = ratio > 1 + eps if advantage > 0 else ratio < 1 - eps
    ax = plot_clipped_surrogate(ratio, advantage, eps, zero)
    surrogate = ax.get_lines()[0].get_ydata()
    expected = np.minimum(ratio * advantage, np.clip(ratio, 1 - eps, 1 + eps) * advantage)
    np.testing.assert_allclose(surrogate, expected)
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), ratio * advantage)
    edges = sorted(line.get_xdata()[0] for line in ax.get_lines()[2:])
    np.testing.assert_allclose(edges, [1 - eps, 1 + eps])
    assert len(ax.collections) == 1  # the shaded zero-gradient region
    with pytest.raises(ValueError, match="zero_grad has shape"):
        plot_clipped_surrogate(ratio, advantage, eps, zero[:3])
    plt.close("all")


def test_plot_history_grid_one_history_and_several_runs():
    h = _history(6, 1.0)
    fig = plot_history_grid(
        h, [("loss", "Loss", "loss"), (["loss", "reward"], "Both", "v")], ncols=2
    )
    first, second = fig.axes
    np.testing.assert_allclose(first.get_lines()[0].get_ydata(), h["loss"])
    assert {line.get_label() for line in second.get_lines()} == {"loss", "reward"}

    runs = {"small": _history(4, 1.0), "large": _history(4, 3.0)}
    fig = plot_history_grid(
        runs, [("reward", "Reward", "r"), ("loss", "Loss", "l"), ("loss", "Again", "l")], ncols=2
    )
    assert len(fig.axes) == 4 and not fig.axes[3].get_visible()  # 3 panels on a 2x2 grid
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["small", "large"]
    np.testing.assert_allclose(fig.axes[0].get_lines()[1].get_ydata(), runs["large"]["reward"])
    with pytest.raises(ValueError, match="one key"):
        plot_history_grid(runs, [(["loss", "reward"], "x", "y")])
    with pytest.raises(ValueError, match="panels is empty"):
        plot_history_grid(h, [])
    plt.close("all")


# -- plot_bars; minialign.plots.interactive: sliders, and a figure that redraws -----------


def test_plot_bars_puts_each_series_side_by_side_at_each_position():
    series = {"a": [1.0, 2.0, 3.0], "b": [0.5, -1.0, 0.0]}
    ax = plot_bars(series, labels=["x", "y", "z"], title="t")
    heights = [p.get_height() for p in ax.patches]
    assert heights == [1.0, 2.0, 3.0, 0.5, -1.0, 0.0]
    centres = np.array([p.get_x() + p.get_width() / 2 for p in ax.patches]).reshape(2, 3)
    np.testing.assert_allclose(centres.mean(axis=0), [0, 1, 2])  # each group centred
    assert np.all(centres[0] < centres[1])  # series in the order given
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    assert ax.get_title() == "t" and ax.get_legend() is not None


def test_plot_bars_errors_name_the_problem():
    with pytest.raises(ValueError, match="series is empty"):
        plot_bars({})
    with pytest.raises(ValueError, match="same length"):
        plot_bars({"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match="1 labels for 2 positions"):
        plot_bars({"a": [1, 2]}, labels=["only"])


finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(value=finite, low=finite, high=finite, step=st.floats(-1.0, 1.0))
def test_a_slider_is_accepted_exactly_when_its_range_makes_sense(value, low, high, step):
    valid = low < high and step > 0 and low <= value <= high
    if valid:
        slider = Slider(value, low, high, step)
        assert (slider.value, slider.low, slider.high, slider.step) == (value, low, high, step)
    else:
        with pytest.raises(ValueError, match="Slider: "):
            Slider(value, low, high, step)


@given(st.lists(st.integers(-100, 100), min_size=1, max_size=8, unique=True), st.data())
def test_a_slider_over_options_needs_its_value_among_them(options, data):
    value = data.draw(st.sampled_from(options))
    assert Slider(value, options=options).options == tuple(options)
    outside = data.draw(st.integers(-200, 200))
    assume(outside not in options)
    with pytest.raises(ValueError, match="is not one of options"):
        Slider(outside, options=options)


def test_slider_errors_name_the_problem():
    for bad, match in [
        (dict(value=1.0, low=0.0, high=2.0), "give value, low, high and step"),
        (dict(value=1, low=0, high=2, step=1, options=(1, 2)), "not both"),
        (dict(value=float("nan"), low=0.0, high=1.0, step=0.1), "finite"),
        (dict(value=0.5, low=0.0, high=float("inf"), step=0.1), "finite"),
    ]:
        with pytest.raises(ValueError, match=match):
            Slider(**bad)


def _recording_draw(calls):
    """A draw function that plots y = value * x and remembers what it was called with."""

    def draw(ax, scale, shift=0.0):
        calls.append((ax, scale, shift))
        if scale < 0:
            raise ValueError("scale must be >= 0")
        x = np.linspace(0, 1, 5)
        ax.plot(x, scale * x + shift)
        ax.set_title(f"scale {scale}")

    return draw


def test_without_a_live_kernel_the_figure_is_drawn_once_and_shown(monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    calls = []
    out = interactive_figure(_recording_draw(calls), scale=Slider(2.0, 0.0, 4.0, 0.5),
                             shift=Slider(1, options=(0, 1, 2)))  # fmt: skip
    assert out is None and len(calls) == 1 and len(shown) == 1
    ax, scale, shift = calls[0]
    assert (scale, shift) == (2.0, 1) and ax.figure is shown[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 2.0 * np.linspace(0, 1, 5) + 1)
    assert not interactive.live_kernel()  # pytest is not a Jupyter kernel


def test_draw_gets_the_row_of_axes_when_there_are_several_panels(monkeypatch):
    monkeypatch.setattr(plt, "show", lambda: None)
    seen = []
    interactive_figure(lambda axes, k: seen.append(axes), ncols=3, width=2.0, height=1.0,
                       k=Slider(1, 0, 5, 1))  # fmt: skip
    (axes,) = seen
    assert axes.shape == (3,) and np.allclose(axes[0].figure.get_size_inches(), [6.0, 1.0])


def test_interactive_figure_errors_name_the_problem():
    with pytest.raises(ValueError, match="no sliders"):
        interactive_figure(lambda ax: None)
    with pytest.raises(ValueError, match="scale=0.5 is not a Slider"):
        interactive_figure(lambda ax, scale: None, scale=0.5)


class _Handle:
    """What IPython's display(..., display_id=True) returns: records each update."""

    def __init__(self):
        self.updates = []

    def update(self, fig):
        lines = fig.axes[0].lines
        self.updates.append(lines[0].get_ydata().copy() if lines else None)


def test_in_a_live_kernel_moving_a_slider_redraws_the_same_output(monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    shown, handle, created = [], _Handle(), {}
    monkeypatch.setattr(interactive, "live_kernel", lambda: True)
    monkeypatch.setattr(interactive, "_display", lambda obj, **kw: shown.append((obj, kw)) or (
        handle if kw.get("display_id") else None))  # fmt: skip
    make = Slider.widget
    monkeypatch.setattr(Slider, "widget", lambda s, n: created.setdefault(n, make(s, n)))
    calls = []
    interactive_figure(_recording_draw(calls), scale=Slider(2.0, 0.0, 4.0, 0.5, label="s"),
                       shift=Slider(1, options=(0, 1, 2)))  # fmt: skip
    (view, view_kw), (fig, fig_kw) = shown
    assert view_kw == {"raw": True} and fig_kw == {"display_id": True}
    assert "application/vnd.jupyter.widget-view+json" in view  # the sliders ...
    assert view["text/plain"].startswith("(sliders for scale, shift")  # ... not their repr
    assert isinstance(created["scale"], ipywidgets.FloatSlider)
    assert isinstance(created["shift"], ipywidgets.SelectionSlider)
    assert created["scale"].description == "s" and not created["scale"].continuous_update
    assert len(calls) == 1 and not handle.updates

    created["scale"].value = 3.5  # what letting go of the slider does
    x = np.linspace(0, 1, 5)
    assert calls[-1][1:] == (3.5, 1) and len(fig.axes[0].lines) == 1  # cleared, then redrawn
    np.testing.assert_allclose(handle.updates[-1], 3.5 * x + 1)
    created["shift"].value = 2
    np.testing.assert_allclose(handle.updates[-1], 3.5 * x + 2)
    assert fig.axes[0].get_title() == "scale 3.5"


def test_an_error_while_redrawing_is_shown_under_the_sliders(monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    monkeypatch.setattr(interactive, "live_kernel", lambda: True)
    handle, boxes = _Handle(), []

    class Box(ipywidgets.VBox):  # remembers the box of sliders it makes
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            boxes.append(self)

    monkeypatch.setattr(ipywidgets, "VBox", Box)
    monkeypatch.setattr(interactive, "_display", lambda obj, **kw: handle)
    calls = []
    interactive_figure(_recording_draw(calls), scale=Slider(1, -2, 2, 1))
    slider, status = boxes[0].children
    assert isinstance(slider, ipywidgets.IntSlider)
    slider.value = -1  # the draw function raises: the error shows, the cleared figure too
    assert status.value == "draw failed: ValueError: scale must be >= 0"
    assert handle.updates == [None]
    slider.value = 1
    assert status.value == "" and handle.updates[-1] is not None
