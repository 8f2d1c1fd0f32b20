"""Small figure helpers for the notebooks: the lines every panel repeats, so that a code
cell shows the quantity being plotted rather than matplotlib."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def panels(n: int = 1, *, width: float = 5.5, height: float = 3.8):
    """A row of ``n`` axes, ``width`` x ``height`` inches each: ``fig, axes = panels(3)``.

    ``axes`` is always a 1-D array (also for ``n = 1``)."""
    import matplotlib.pyplot as plt

    if int(n) != n or n < 1:
        raise ValueError(f"panels: n must be a positive integer, got {n}")
    fig, axes = plt.subplots(1, int(n), figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def decorate(
    ax,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    *,
    hlines: Mapping[str, float] | None = None,
    vlines: Mapping[str, float] | None = None,
    logx: bool = False,
    logy: bool = False,
    legend: bool = True,
    fontsize: float | None = None,
):
    """Title, axis labels, labelled reference lines, log axes, grid and legend on ``ax``.

    ``hlines``/``vlines`` map a legend label to a value: ``hlines={"log 2": np.log(2)}``
    draws a dotted grey horizontal line at 0.693 named "log 2" (an empty label: no legend
    entry). The legend is drawn only if some line has a label. Returns the axes.
    """
    for (label, value), style in zip((hlines or {}).items(), ("--", ":", "-.") * 9):
        ax.axhline(value, color="gray", ls=style, lw=1, label=label or None)
    for (label, value), style in zip((vlines or {}).items(), ("--", ":", "-.") * 9):
        ax.axvline(value, color="gray", ls=style, lw=1, label=label or None)
    if title is not None:
        ax.set_title(title)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=fontsize)
    return ax


def moving_average(values, k: int) -> np.ndarray:
    """Trailing mean over ``k`` points, ``len(values) - k + 1`` of them (``k = 1``: a copy)."""
    values = np.asarray(values, dtype=float)
    if int(k) != k or k < 1:
        raise ValueError(f"moving_average: k must be a positive integer, got {k}")
    if len(values) < k:
        raise ValueError(f"moving_average: need at least k = {k} values, got {len(values)}")
    return np.convolve(values, np.ones(int(k)) / k, "valid")


def plot_curves(curves: Mapping, ax=None, *, style: str = "-", smooth: int = 1, **decoration):
    """One line per item of ``curves``, then `decorate` (``decoration`` = its keywords).

    Each value is ``y`` (drawn against 0, 1, 2, ...) or a pair ``(x, y)``. ``smooth`` > 1
    draws the trailing `moving_average` over that many points instead, against the x of
    each window's last point. Returns the axes.
    """
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError("plot_curves: curves is empty; pass {label: y} or {label: (x, y)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    for label, curve in curves.items():
        x, y = curve if isinstance(curve, tuple) else (np.arange(len(curve)), curve)
        x, y = np.asarray(x), np.asarray(y, dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"plot_curves: {label!r} has x of shape {x.shape}, y {y.shape}")
        if smooth > 1:
            x, y = x[smooth - 1 :], moving_average(y, smooth)
        ax.plot(x, y, style, label=label)
    return decorate(ax, **decoration)


def plot_histograms(samples: Mapping, bins, ax=None, *, step: bool = False, **decoration):
    """Overlaid histograms, one per item of ``samples`` ({label: values}), on shared ``bins``.

    ``step=True`` draws outlines (many overlapping histograms), otherwise translucent
    bars. Then `decorate` with ``decoration``. Returns the axes."""
    import matplotlib.pyplot as plt

    if not samples:
        raise ValueError("plot_histograms: samples is empty; pass {label: values}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    for label, values in samples.items():
        if step:
            ax.hist(np.asarray(values, dtype=float), bins=bins, histtype="step", lw=2, label=label)
        else:
            ax.hist(np.asarray(values, dtype=float), bins=bins, alpha=0.6, label=label)
    return decorate(ax, **decoration)


def plot_clipped_surrogate(ratio, advantage: float, epsilon: float, zero_grad=None, ax=None):
    r"""PPO's clipped objective for one advantage $\hat A$ over a grid of ratios $r$.

    Draws $\min(r\hat A,\ \mathrm{clip}(r, 1-\epsilon, 1+\epsilon)\hat A)$ (the term inside
    $L^{\rm CLIP}$, maximised), the unclipped $r\hat A$, the edges $1\pm\epsilon$, and shades
    the ratios where ``zero_grad`` (a bool array over ``ratio``, e.g. measured with
    autograd) is True. Returns the axes.
    """
    import matplotlib.pyplot as plt

    ratio = np.asarray(ratio, dtype=float)
    surrogate = np.minimum(ratio * advantage, np.clip(ratio, 1 - epsilon, 1 + epsilon) * advantage)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(ratio, surrogate, color="tab:blue", label=r"$\min(r\hat A,\ \mathrm{clip}(r)\hat A)$")
    ax.plot(ratio, ratio * advantage, ":", color="gray", label=r"unclipped $r\hat A$")
    if zero_grad is not None:
        zero_grad = np.asarray(zero_grad, dtype=bool)
        if zero_grad.shape != ratio.shape:
            raise ValueError(
                f"plot_clipped_surrogate: zero_grad has shape {zero_grad.shape}, "
                f"ratio has {ratio.shape}"
            )
        low, high = surrogate.min() - 0.1, surrogate.max() + 0.1
        ax.fill_between(
            ratio, low, high, where=zero_grad, color="tab:red", alpha=0.15, label="gradient = 0"
        )
    for edge in (1 - epsilon, 1 + epsilon):
        ax.axvline(edge, color="gray", lw=0.8, ls="--")
    ax.set_title(rf"$\hat A = {advantage:+g}$, $\epsilon = {epsilon:g}$")
    ax.set_xlabel(r"ratio $r_\theta = \pi_\theta / \pi_{\theta_{old}}$")
    ax.set_ylabel("surrogate objective")
    ax.legend(fontsize=8, loc="upper left" if advantage > 0 else "lower left")
    ax.grid(alpha=0.3)
    return ax


def plot_bars(series: Mapping, ax=None, *, labels: Sequence[str] | None = None, **decoration):
    """Grouped bars: one group per position, one bar per item of ``series`` ({label: values},
    all of one length), then `decorate` with ``decoration``. ``labels``
    names the positions on the x axis (default 0, 1, 2, ...). Returns the axes."""
    import matplotlib.pyplot as plt

    if not series:
        raise ValueError("plot_bars: series is empty; pass {label: values}")
    values = {label: np.asarray(v, dtype=float).ravel() for label, v in series.items()}
    lengths = {label: len(v) for label, v in values.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"plot_bars: every series needs the same length, got {lengths}")
    n = len(next(iter(values.values())))
    if labels is not None and len(labels) != n:
        raise ValueError(f"plot_bars: {len(labels)} labels for {n} positions")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    width = 0.8 / len(values)
    for k, (label, v) in enumerate(values.items()):
        ax.bar(np.arange(n) + (k - (len(values) - 1) / 2) * width, v, width, label=label)
    ax.set_xticks(np.arange(n), labels if labels is not None else [str(i) for i in range(n)])
    return decorate(ax, **decoration)
