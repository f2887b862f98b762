"""The runtime manager: per frame, a (profile, operating point) from the requested budgets and the
latency measured on past frames, and the policies it is compared with.

A policy sees what a real runtime sees: the frame's request (deadline, energy budget, accuracy
floor), the library's costs with the device to itself (``sw.frames``, exact from the counters)
and the end-to-end latency it measured for every past frame. It does not see the accelerator's
share of time (another tenant's use), so it estimates it from the measurements: a sample per
frame, ``share = compute / (latency - transfer - switch)``, taken at once when it is lower than
the estimate (contention is what misses deadlines) and approached by ``RELEASE`` of the gap per
frame when higher.

Choice: among the configurations predicted to meet the deadline with a margin and to fit the
energy budget, the most accurate (validation accuracy, never the test set), then the least
energy; with an accuracy floor, the least energy among those at or above it. Against
oscillation (hysteresis): moving to a slower configuration needs its steady latency to meet the
deadline with a wider margin (``UP_MARGIN``), and is not done within ``DWELL`` frames of a switch;
moving to a faster one is always allowed. When nothing is predicted to fit, it takes the fastest
configuration within the energy budget (the fastest of all when none fits the budget); the frame
counts as a miss if it is late. A switch's cost is charged to the frame that pays it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MARGIN = 0.05  # keep the predicted latency this fraction under the deadline
UP_MARGIN = 0.15  # ... and this much under it to move to a slower configuration
DWELL = 8  # frames after a switch before moving to a slower configuration
RELEASE = 0.2  # fraction of the gap to a higher share sample the estimate closes per frame
TIE = 1e-9  # accuracies closer than this are equal


@dataclass(frozen=True)
class Library:
    """The configurations a policy may choose: parallel arrays, one entry per (profile, opp)."""

    groups: list  # tuples
    opps: list  # names
    accuracy: np.ndarray  # validation accuracy of the profile
    transfer_us: np.ndarray
    compute_us: np.ndarray  # alone on the device
    energy_pj: np.ndarray
    switch_us: np.ndarray  # [a, b]: going from a to b
    switch_pj: np.ndarray

    def __len__(self) -> int:
        return len(self.groups)

    def subset(self, keep) -> "Library":
        idx = np.flatnonzero(keep)
        return Library([self.groups[i] for i in idx], [self.opps[i] for i in idx], self.accuracy[idx],
                       self.transfer_us[idx], self.compute_us[idx], self.energy_pj[idx],
                       self.switch_us[np.ix_(idx, idx)], self.switch_pj[np.ix_(idx, idx)])


def best(lib: Library, ok: np.ndarray, floor: float, energy: np.ndarray) -> int | None:
    """The objective: most accurate then least energy, or with a floor the least energy at or
    above it (the most accurate when none reaches it). None when nothing is ``ok``."""
    idx = np.flatnonzero(ok)
    if not len(idx):
        return None
    if not math.isnan(floor):
        above = idx[lib.accuracy[idx] >= floor - TIE]
        if len(above):
            return int(above[np.argmin(energy[above])])
    top = idx[lib.accuracy[idx] >= lib.accuracy[idx].max() - TIE]
    return int(top[np.argmin(energy[top])])


def frame_costs(lib: Library, current: int | None, share: float, energy_uj: float):
    """Per configuration, for the next frame from ``current``: (steady latency at ``share``,
    latency with the switch, energy with the switch, fits the energy budget)."""
    sw_us = lib.switch_us[current] if current is not None else np.zeros(len(lib))
    sw_pj = lib.switch_pj[current] if current is not None else np.zeros(len(lib))
    steady = lib.transfer_us + lib.compute_us / share
    energy = lib.energy_pj + sw_pj
    fits = np.ones(len(lib), bool) if math.isnan(energy_uj) else energy <= energy_uj * 1e6
    return steady, steady + sw_us, energy, fits


def fastest(latency: np.ndarray, fits: np.ndarray) -> int:
    """When nothing is predicted to fit: the fastest within the budget, else the fastest."""
    return int(np.argmin(np.where(fits, latency, np.inf))) if fits.any() else int(np.argmin(latency))


class Manager:
    """Closed-loop choice (module docstring). ``fixed``: always that configuration (a baseline)."""

    def __init__(self, lib: Library, fixed: int | None = None):
        self.lib, self.fixed = lib, fixed
        self.share = 1.0
        self.current: int | None = None
        self.since_switch = DWELL

    def choose(self, deadline_us: float, energy_uj: float, floor: float) -> int:
        if self.fixed is not None:
            return self.fixed
        lib, cur = self.lib, self.current
        steady, predicted, energy, fits = frame_costs(lib, cur, self.share, energy_uj)  # the switch paid once
        ok = fits & (predicted <= deadline_us * (1 - MARGIN))
        if cur is not None:
            slower = lib.compute_us > lib.compute_us[cur]
            up_ok = (steady <= deadline_us * (1 - UP_MARGIN)) & (self.since_switch >= DWELL)
            ok &= ~slower | up_ok
        pick = best(lib, ok, floor, energy)
        return fastest(predicted, fits) if pick is None else pick

    def observe(self, pick: int, latency_us: float, switch_us: float) -> None:
        """The frame ran at ``pick`` and took ``latency_us`` end to end."""
        lib = self.lib
        busy = latency_us - lib.transfer_us[pick] - switch_us
        sample = min(1.0, lib.compute_us[pick] / busy) if busy > 0 else 1.0
        self.share = sample if sample < self.share else self.share + RELEASE * (sample - self.share)
        self.since_switch = 0 if pick != self.current else self.since_switch + 1
        self.current = pick


class Oracle:
    """Knows every frame's deadline, budget and share in advance: per frame the best configuration
    that meets them exactly, switch costs from its own previous choice included (greedy per
    frame, not a whole-trace optimum)."""

    def __init__(self, lib: Library):
        self.lib, self.current = lib, None

    def choose_known(self, deadline_us: float, energy_uj: float, floor: float, share: float) -> int:
        _, latency, energy, fits = frame_costs(self.lib, self.current, share, energy_uj)
        pick = best(self.lib, fits & (latency <= deadline_us), floor, energy)
        return fastest(latency, fits) if pick is None else pick

    def observe(self, pick: int, latency_us: float, switch_us: float) -> None:
        self.current = pick


def simulate(policy, lib: Library, trace, correct: dict) -> dict:
    """Run ``policy`` over ``trace``; ``correct[groups]`` = per test image, whether the golden
    model's prediction at that profile is right. Returns per-frame arrays."""
    n = len(trace)
    pick = np.empty(n, np.int64)
    latency, energy, switch_us = np.empty(n), np.empty(n), np.zeros(n)
    prev = None
    for i in range(n):
        d, e, f, s = trace.deadline_us[i], trace.energy_uj[i], trace.accuracy_floor[i], trace.share[i]
        k = policy.choose_known(d, e, f, s) if isinstance(policy, Oracle) else policy.choose(d, e, f)
        if prev is not None:
            switch_us[i] = lib.switch_us[prev, k]
        latency[i] = lib.transfer_us[k] + lib.compute_us[k] / s + switch_us[i]
        energy[i] = lib.energy_pj[k] + (lib.switch_pj[prev, k] if prev is not None else 0.0)
        policy.observe(k, latency[i], switch_us[i])
        pick[i] = k
        prev = k
    images = np.arange(n) % len(next(iter(correct.values())))
    right = np.array([correct[lib.groups[k]][im] for k, im in zip(pick, images)], bool)
    return dict(pick=pick, latency_us=latency, energy_pj=energy, switch_us=switch_us, correct=right,
                met=latency <= trace.deadline_us,
                within_budget=np.isnan(trace.energy_uj) | (energy <= trace.energy_uj * 1e6))


def summary(name: str, lib: Library, run: dict) -> dict:
    """One policy's row: deadline misses, accuracy over the frames, energy, latency, switches."""
    pick = run["pick"]
    return dict(policy=name, frames=len(pick),
                deadline_misses_pct=round(100 * (1 - run["met"].mean()), 3),
                energy_over_budget_pct=round(100 * (1 - run["within_budget"].mean()), 3),
                accuracy=round(float(run["correct"].mean()), 5),
                energy_uj=round(float(run["energy_pj"].sum()) * 1e-6, 3),
                mean_latency_us=round(float(run["latency_us"].mean()), 2),
                worst_latency_us=round(float(run["latency_us"].max()), 2),
                switches=int((pick[1:] != pick[:-1]).sum()),
                width_switches=int(sum(lib.groups[a] != lib.groups[b] for a, b in zip(pick[:-1], pick[1:]))),
                opp_switches=int(sum(lib.opps[a] != lib.opps[b] for a, b in zip(pick[:-1], pick[1:]))))
