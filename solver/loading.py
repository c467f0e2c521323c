"""Load paths: the lithium fraction of the particles as a function of a load coordinate.

The load coordinate s runs from 0 to the number of path segments; segment k goes
linearly from path[k] to path[k + 1]. Steps never jump over a turning point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadPath:
    points: tuple[float, ...]
    x_ref: float
    duration: float  # s per segment

    @staticmethod
    def from_case(loading) -> "LoadPath":
        x_ref = loading.x_ref if loading.x_ref is not None else loading.path[0]
        return LoadPath(tuple(loading.path), x_ref, loading.duration)

    @property
    def length(self) -> float:
        return float(len(self.points) - 1)

    def x(self, s: float) -> float:
        """Lithium fraction at load coordinate s."""
        s = min(max(s, 0.0), self.length)
        k = min(int(math.floor(s)), len(self.points) - 2)
        t = s - k
        return self.points[k] + t * (self.points[k + 1] - self.points[k])

    def time(self, s: float) -> float:
        return s * self.duration

    def next_turn(self, s: float) -> float:
        """The first turning point (integer s) strictly after s."""
        return float(min(math.floor(s + 1e-12) + 1, self.length))
