"""The cycling protocol: its segments, the position of the cell in it, and the results of a
step and the scalar state of the cell.

A protocol segment is a constant cell current (discharge, charge; it ends at a cut-off
voltage or after a duration), a rest (zero current) or a held voltage (potentiostatic; it
ends after a duration or when the current falls below a limit). The segments of one cycle
are repeated ``loading.cycles`` times.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: a galvanostatic solve does not look for the voltage further than this past the cut-off (V)
CUTOFF_MARGIN = 1.0


@dataclass
class CellState:
    """Scalar state of the cell (internal units: s, V, A, mol, C; in 2D per um of thickness)."""

    time: float = 0.0
    voltage: float = 0.0  # cathode against the lithium-metal electrode
    current: float = 0.0  # cell current, > 0 on discharge (= -int i_n over the particle surfaces)
    c_rate: float = 0.0  # current / (1C current), signed
    x_mean: float = 0.0  # volume mean lithium fraction of the particles
    soc: float = 0.0  # 1 - capacity-weighted mean lithium fraction
    total_lithium: float = 0.0  # int c_max x over the particles
    charge: float = 0.0  # int I dt since the start (discharge positive)
    segment: int = 0  # protocol segment of the last step, counted over all cycles (0, 1, ...)
    cycle: int = 0
    mode: str = ""
    segment_time: float = 0.0
    segment_charge: float = 0.0  # int I dt in that segment

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ECStepResult:
    converged: bool
    dt: float = 0.0  # the step taken (s)
    newton_iterations: int = 0  # field Newton iterations of all solves of the step
    outer_iterations: int = 0  # updates of the control potentials
    solves: int = 0  # field solves (cut-off landing included)
    event: str = ""  # end of a segment: "cutoff", "duration", "current" (hold), "limit"; "" otherwise
    reason: str = ""
    beyond_cutoff: bool = False  # the current needs a voltage more than CUTOFF_MARGIN past the cut-off
    coupled: bool = False  # solved by the coupled Newton method (the fast path)


@dataclass(frozen=True)
class Segment:
    """One protocol segment with its current in A (discharge positive) and voltages in V."""

    mode: str  # discharge, charge, rest, hold
    current: float = 0.0  # discharge, charge (rest: 0)
    voltage: float | None = None  # hold
    cutoff: float | None = None  # discharge, charge
    duration: float | None = None
    until_current: float | None = None  # hold: ends when |I| falls below
    index: int = 0  # position in the protocol
    cycle: int = 0

    @property
    def potentiostatic(self) -> bool:
        return self.mode == "hold"

    def beyond_cutoff(self, voltage: float) -> bool:
        if self.cutoff is None:
            return False
        return voltage <= self.cutoff if self.mode == "discharge" else voltage >= self.cutoff

    def search_limit(self) -> float | None:
        """The voltage a galvanostatic solve does not pass (CUTOFF_MARGIN past the cut-off)."""
        if self.cutoff is None:
            return None
        return self.cutoff - CUTOFF_MARGIN if self.mode == "discharge" else self.cutoff + CUTOFF_MARGIN


def protocol_segments(loading, one_c: float, collector_area: float) -> list[Segment]:
    """The segments of one cycle of ``loading.protocol`` (internal units) with currents in A:
    a C-rate times the 1C current, or a current density times the collector-side area."""
    out = []
    for k, s in enumerate(loading.protocol):
        if s.mode in ("discharge", "charge"):
            if s.current_density is not None:
                amp = s.current_density * collector_area
            elif s.c_rate is not None:
                amp = s.c_rate * one_c
            elif loading.current_density is not None:
                amp = loading.current_density * collector_area
            else:
                amp = loading.c_rate * one_c
            if not amp > 0:
                raise ValueError(f"loading.protocol[{k}]: the current is zero (no collector-side area or no capacity)")
            cut = s.cutoff if s.cutoff is not None else (loading.v_min if s.mode == "discharge" else loading.v_max)
            out.append(Segment(s.mode, amp if s.mode == "discharge" else -amp, None, cut, s.duration, None, k))
        elif s.mode == "rest":
            out.append(Segment("rest", 0.0, None, None, s.duration, None, k))
        else:
            until = s.until_c_rate * one_c if s.until_c_rate is not None else None
            out.append(Segment("hold", 0.0, s.voltage, None, s.duration, until, k))
    return out


class ProtocolPosition:
    """Where the cell is in its protocol: the segment the next step belongs to, the time,
    charge and steps spent in it, and the log of the finished segments (one dict each:
    segment, cycle, index, mode, event, duration, charge, capacity, voltage, x_mean, time).

    ``report`` describes the segment of the last committed step (the protocol may have
    moved on since): segment, cycle, mode, segment_time, segment_charge.
    """

    def __init__(self, loading, one_c: float, collector_area: float):
        self.segments_per_cycle = protocol_segments(loading, one_c, collector_area)
        self.n_segments = len(self.segments_per_cycle) * loading.cycles
        self.stop_at_cutoff = loading.on_cutoff == "stop"
        self.index = 0  # of the segment of the next step, counted over all cycles
        self.done = False
        self.segment_time = 0.0
        self.segment_charge = 0.0
        self.segment_steps = 0
        self.log: list[dict] = []
        self.report = self._report()

    @property
    def segment(self) -> Segment:
        """The segment the next step belongs to."""
        n = len(self.segments_per_cycle)
        k = min(self.index, self.n_segments - 1)
        s = self.segments_per_cycle[k % n]
        return Segment(s.mode, s.current, s.voltage, s.cutoff, s.duration, s.until_current, s.index, k // n)

    def _report(self) -> dict:
        seg = self.segment
        return {"segment": self.index, "cycle": seg.cycle, "mode": seg.mode, "segment_time": self.segment_time,
                "segment_charge": self.segment_charge}

    def advance(self, dt: float, current: float) -> None:
        """Count a committed step of ``dt`` seconds at the cell current ``current``."""
        self.segment_time += dt
        self.segment_charge += current * dt
        self.segment_steps += 1
        self.report = self._report()

    def next_segment(self, event: str, voltage: float, x_mean: float, time: float) -> None:
        """Log the present segment, ended by ``event``, and move to the next one."""
        seg = self.segment
        self.log.append({
            "segment": self.index, "cycle": seg.cycle, "index": seg.index, "mode": seg.mode, "event": event,
            "duration": self.segment_time, "charge": self.segment_charge, "capacity": abs(self.segment_charge),
            "voltage": voltage, "x_mean": x_mean, "time": time,
        })
        self.index += 1
        self.segment_time = self.segment_charge = 0.0
        self.segment_steps = 0
        if self.index >= self.n_segments or (event == "cutoff" and self.stop_at_cutoff):
            self.done = True

    def snapshot(self) -> dict:
        return {"seg": self.index, "seg_time": self.segment_time, "seg_charge": self.segment_charge,
                "seg_steps": self.segment_steps, "done": self.done, "log": len(self.log), "report": dict(self.report)}

    def restore(self, s: dict) -> None:
        """Go back to a :meth:`snapshot` (the log is cut to its length then)."""
        self.index, self.segment_time, self.segment_charge = s["seg"], s["seg_time"], s["seg_charge"]
        self.segment_steps, self.done = s["seg_steps"], s["done"]
        del self.log[s["log"]:]
        self.report = dict(s["report"])
