"""Piecewise-linear tables of measured data (open-circuit voltages, chemical strains,
diffusivities against the lithium fraction), evaluable on numbers (NumPy) and inside
UFL forms (one expression, so that UFL can differentiate it)."""

from __future__ import annotations

import numpy as np


def clip(x, lo: float, hi: float, lib):
    if lib is np:
        return np.clip(x, lo, hi)
    return lib.min_value(lib.max_value(x, lo), hi)


def piecewise_linear(x, xs, ys, lib=np):
    """The piecewise-linear interpolant of the points (xs, ys), constant beyond the ends,
    written as a sum of ramps so that it is one UFL expression (and NumPy-evaluable):

        y = y_0 + s_0 (xc - x_0) + sum_k (s_k - s_(k-1)) max(xc - x_k, 0),  xc = clip(x)

    with s_k the slope of segment k."""
    xs, ys, slopes = _segments(xs, ys)
    xc = clip(x, xs[0], xs[-1], lib)
    y = ys[0] + slopes[0] * (xc - xs[0])
    for k in range(1, len(slopes)):
        ramp = np.maximum(xc - xs[k], 0.0) if lib is np else lib.max_value(xc - xs[k], 0.0)
        y = y + (slopes[k] - slopes[k - 1]) * ramp
    return y


def piecewise_linear_slope(x, xs, ys, lib=np):
    """The derivative of :func:`piecewise_linear` in x: the slope of the segment that holds
    x (at a point of the table, the segment to its right), 0 beyond the ends:

        dy/dx = sum_k (s_k - s_(k-1)) H(x - x_k) - s_(n-1) H(x - x_n),  s_(-1) = 0

    with H(t) = 1 for t >= 0, else 0 (NumPy or one UFL expression)."""
    xs, ys, slopes = _segments(xs, ys)
    if lib is np:
        x = np.asarray(x, dtype=float)
        k = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(slopes) - 1)
        return np.where((x >= xs[0]) & (x < xs[-1]), np.asarray(slopes)[k], 0.0)
    step = lambda a: lib.conditional(lib.ge(x, a), 1.0, 0.0)  # noqa: E731
    s = slopes[0] * step(xs[0])
    for k in range(1, len(slopes)):
        s = s + (slopes[k] - slopes[k - 1]) * step(xs[k])
    return s - slopes[-1] * step(xs[-1])


def _segments(xs, ys) -> tuple[list[float], list[float], list[float]]:
    """The points of a table as floats and the slope of each segment (validated)."""
    xs = [float(v) for v in xs]
    ys = [float(v) for v in ys]
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("a table needs at least two points and as many x as y values")
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise ValueError(f"table x values must increase strictly; got {xs}")
    return xs, ys, [(ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k]) for k in range(len(xs) - 1)]
