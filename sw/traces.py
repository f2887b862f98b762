"""Budget traces for the runtime manager: per frame, what is asked (a deadline, optionally an
energy budget and an accuracy floor) and what the manager cannot see (the accelerator's share of
time, less than 1 while another tenant uses it).

Shipped traces are scaled to the network and array at hand: ``ref_us`` and ``ref_pj`` are the
full width's latency and energy per frame at the nominal operating point, alone on the device.

* ``step``: a fixed deadline of 1.25 ref; a second tenant takes 60 % of the accelerator's time
  from 30 % of the frames on and leaves at 75 %;
* ``walk``: the deadline a random walk (log-normal steps) between 0.3 and 2.5 ref, the share a
  slow random walk between 0.6 and 1 (seeded, so the trace is the same every run);
* ``energy``: a loose deadline (3 ref) and an energy budget per frame that tightens linearly
  from 1.0 to 0.25 ref (a battery running down).

A user's trace is a CSV file, one row per frame (frame i runs test image i mod 10,000):

* ``deadline_us`` (required): the frame's deadline, microseconds, > 0;
* ``share`` (optional, default 1): the accelerator's share of time, in (0, 1]; hidden from the
  manager, which sees only the latency it measures;
* ``energy_uj`` (optional, empty = none): the frame's energy budget, microjoules, > 0;
* ``accuracy_floor`` (optional, empty = none): a validation accuracy in [0, 1] the frame's
  configuration must reach; with a floor the manager takes the least energy above it.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHIPPED = ("step", "walk", "energy")
COLUMNS = ("deadline_us", "share", "energy_uj", "accuracy_floor")


class TraceError(ValueError):
    """A trace that cannot be run (the message says what to fix)."""


@dataclass(frozen=True)
class Trace:
    name: str
    deadline_us: np.ndarray
    share: np.ndarray
    energy_uj: np.ndarray  # nan: no budget
    accuracy_floor: np.ndarray  # nan: no floor

    def __len__(self) -> int:
        return len(self.deadline_us)


def shipped(name: str, frames: int, ref_us: float, ref_pj: float, seed: int = 0) -> Trace:
    if name not in SHIPPED:
        raise TraceError(f"unknown trace {name!r}: use one of {', '.join(SHIPPED)} or a CSV file")
    i = np.arange(frames)
    none = np.full(frames, np.nan)
    if name == "step":
        share = np.where((i >= 0.3 * frames) & (i < 0.75 * frames), 0.4, 1.0)
        return Trace(name, np.full(frames, 1.25 * ref_us), share, none, none)
    if name == "walk":
        rng = np.random.default_rng(seed)
        deadline = _walk(rng, frames, math.log(1.0), 0.03, math.log(0.3), math.log(2.5))
        share = _walk(rng, frames, 1.0, 0.01, 0.6, 1.0)
        return Trace(name, ref_us * np.exp(deadline), share, none, none)
    budget = ref_pj * 1e-6 * (1.0 - 0.75 * i / max(frames - 1, 1))
    return Trace(name, np.full(frames, 3 * ref_us), np.ones(frames), budget, none)


def _walk(rng, n: int, start: float, step: float, lo: float, hi: float) -> np.ndarray:
    """A random walk reflected into [lo, hi]."""
    x, out = start, np.empty(n)
    for k, d in enumerate(rng.normal(0.0, step, n)):
        x += d
        if x < lo:
            x = 2 * lo - x
        if x > hi:
            x = 2 * hi - x
        out[k] = x
    return out


def load_csv(path: str) -> Trace:
    """A user's trace (module docstring); TraceError names the row and column at fault."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"trace file {path} does not exist: give a CSV file or one of {', '.join(SHIPPED)}")
    try:
        with open(p, newline="") as f:
            rows = list(csv.DictReader(f))
            header = rows[0].keys() if rows else None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TraceError(f"trace file {path} cannot be read as CSV: {e}") from None
    if header is None:
        raise TraceError(f"trace file {path} has no frames: it needs a header line with deadline_us and one row "
                         "per frame")
    if "deadline_us" not in header:
        raise TraceError(f"trace file {path} has no deadline_us column (columns: deadline_us, and optionally "
                         "share, energy_uj, accuracy_floor)")
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise TraceError(f"trace file {path}: unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})")
    cols = {c: np.full(len(rows), np.nan) for c in COLUMNS}
    limits = {"deadline_us": (0, math.inf, False), "share": (0, 1, False), "energy_uj": (0, math.inf, True),
              "accuracy_floor": (0, 1, True)}
    for r, row in enumerate(rows, start=2):
        for c in header:
            text = (row[c] or "").strip()
            if not text and c in ("energy_uj", "accuracy_floor"):
                continue
            if not text and c == "share":
                cols[c][r - 2] = 1.0
                continue
            try:
                v = float(text)
            except ValueError:
                raise TraceError(f"trace file {path}, line {r}: {c} must be a number, got {text!r}") from None
            lo, hi, lo_closed = limits[c]
            if not (v >= lo if lo_closed else v > lo) or not v <= hi:
                span = f"{'[' if lo_closed else '('}{lo:g}, {hi:g}]"
                raise TraceError(f"trace file {path}, line {r}: {c} must be in {span}, got {text}")
            cols[c][r - 2] = v
    if "share" not in header:
        cols["share"][:] = 1.0
    return Trace(p.stem, cols["deadline_us"], cols["share"], cols["energy_uj"], cols["accuracy_floor"])


def resolve(spec: str, frames: int | None, ref_us: float, ref_pj: float) -> Trace:
    """``--trace NAME|FILE.csv`` with ``--frames`` (shipped: default 10,000; a file: its rows, or
    its first N)."""
    if spec in SHIPPED:
        return shipped(spec, frames or 10_000, ref_us, ref_pj)
    t = load_csv(spec)
    if frames:
        if frames > len(t):
            raise TraceError(f"--frames {frames} but trace file {spec} has {len(t)} frames")
        t = Trace(t.name, *(a[:frames] for a in (t.deadline_us, t.share, t.energy_uj, t.accuracy_floor)))
    return t
