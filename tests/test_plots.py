"""The plotting helpers the notebooks use: they draw what they are given, and reject bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from minialign.plots import plot_clipped_surrogate, plot_curves, plot_history_grid
from minialign.train.history import History


def _history(n, scale):
    h = History()
    for step in range(n):
        h.log(step, loss=scale / (step + 1), reward=scale * step)
    return h


def test_plot_curves_draws_one_line_per_label_on_the_shared_x():
    x = np.arange(5)
    ax = plot_curves(x, {"a": x**2, "b": -x}, hline=0.0, title="t", xlabel="x", ylabel="y")
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["a"].get_ydata(), x**2)
    np.testing.assert_array_equal(lines["b"].get_xdata(), x)
    assert ax.get_title() == "t" and len(ax.get_lines()) == 3  # two curves and the 0 line
    with pytest.raises(ValueError, match="curve 'c' has shape"):
        plot_curves(x, {"c": [1.0, 2.0]})
    with pytest.raises(ValueError, match="curves is empty"):
        plot_curves(x, {})
    plt.close("all")


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
