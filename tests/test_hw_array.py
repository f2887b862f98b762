# amaranth: UnusedElaboratable=no
"""hw.gateware.array.SystolicArray (and hw.gateware.pe) in amaranth.sim: chunks streamed back to back under the
sequencer's weight-load rule (docs/design.md), checked against an int64 NumPy product, plus gating.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from hw.gateware.array import SystolicArray


@dataclass
class Stimulus:
    """Cycle-by-cycle inputs of one run and the expected outputs."""
    x: np.ndarray  # int64 (T, n)
    valid: np.ndarray  # bool (T,)
    first: np.ndarray  # bool (T,)
    w_load: np.ndarray  # bool (T,)
    w_row: np.ndarray  # int (T,)
    w_data: np.ndarray  # int64 (T, n)
    w_en: np.ndarray  # int (T,) bit c = column c
    chunk: np.ndarray  # int (T,): chunk of the slot presented at this cycle, -1 before the first
    weights: list  # per chunk int64 (n, n) [row, col]
    enables: list  # per chunk int64 (n, n) 0/1
    starts: list  # per chunk: cycle of its first pixel


def _random_int8(rng, shape):
    """int8 values with the extremes -128 and 127 made frequent."""
    v = rng.integers(-128, 128, size=shape)
    pick = rng.random(size=shape)
    v[pick < 0.1] = -128
    v[(pick >= 0.1) & (pick < 0.2)] = 127
    return v.astype(np.int64)


def _enables(rng, n, pattern):
    if pattern == "prefix":  # the sequencer's: first nr rows and first nc columns
        nr, nc = rng.integers(1, n + 1, size=2)
        en = np.zeros((n, n), np.int64)
        en[:nr, :nc] = 1
        return en
    return rng.integers(0, 2, size=(n, n)).astype(np.int64)


def make_stimulus(rng, n: int, n_chunks: int, pattern: str) -> Stimulus:
    latency = SystolicArray(n).latency
    weights = [_random_int8(rng, (n, n)) for _ in range(n_chunks)]
    enables = [_enables(rng, n, pattern) for _ in range(n_chunks)]
    if pattern == "prefix" and n_chunks > 1 and enables[1][n - 1].any():
        enables[1][n - 1] = 0  # at least one chunk with a disabled row (gating check)
    # Each chunk: P valid pixels (1..20), bubbles in between (never before the first pixel).
    slots = []
    for _ in range(n_chunks):
        P = int(rng.integers(1, 21))
        s = [True]
        for _ in range(P - 1):
            while rng.random() < 0.15:
                s.append(False)
            s.append(True)
        slots.append(s)

    # Chunk 0's shadow rows at cycles 0..n-1, its first pixel at cycle 1 (the tightest start);
    # chunk i+1's row r at s_i + n + r, its start no earlier than s_i + n + 1.
    starts = [1]
    for i in range(n_chunks - 1):
        gap = int(rng.integers(0, 3)) if rng.random() < 0.3 else 0
        starts.append(starts[i] + max(len(slots[i]), n + 1) + gap)
    T = starts[-1] + len(slots[-1]) + latency + 3

    st = Stimulus(
        x=_random_int8(rng, (T, n)), valid=np.zeros(T, bool), first=np.zeros(T, bool),
        w_load=np.zeros(T, bool), w_row=rng.integers(0, n, size=T),
        w_data=_random_int8(rng, (T, n)), w_en=rng.integers(0, 1 << n, size=T),
        chunk=np.full(T, -1), weights=weights, enables=enables, starts=starts)
    for i, s0 in enumerate(starts):
        st.chunk[s0:] = i
        st.valid[s0:s0 + len(slots[i])] = slots[i]
        st.first[s0] = True
        load_at = [r for r in range(n)] if i == 0 else [starts[i - 1] + n + r for r in range(n)]
        for r, t in enumerate(load_at):
            assert not st.w_load[t]
            st.w_load[t] = True
            st.w_row[t] = r
            st.w_data[t] = weights[i][r]
            st.w_en[t] = sum(int(b) << c for c, b in enumerate(enables[i][r]))
    return st


def expected_outputs(st: Stimulus) -> np.ndarray:
    """int64 (T, n): sum_r en[r, c] * x[r] * w[r, c] for the slot presented at each cycle."""
    out = np.zeros_like(st.x)
    for t in np.flatnonzero(st.valid):
        i = st.chunk[t]
        out[t] = st.x[t] @ (st.enables[i] * st.weights[i])
    return out


def run_array(n: int, st: Stimulus):
    """Drive the stimulus; return (p_out (T, n), p_valid (T,), x_out (T, n, n), w_act (T, n, n))."""
    dut = SystolicArray(n)
    T = len(st.valid)
    p_out = np.zeros((T, n), np.int64)
    p_valid = np.zeros(T, bool)
    x_reg = np.zeros((T, n, n), np.int64)
    w_act = np.zeros((T, n, n), np.int64)
    pes = [[dut.pe(r, c) for c in range(n)] for r in range(n)]

    async def tb(ctx):
        for t in range(T):  # bounded: exactly T cycles
            ctx.set(dut.x_in, [int(v) for v in st.x[t]])
            ctx.set(dut.x_valid, int(st.valid[t]))
            ctx.set(dut.x_first, int(st.first[t]))
            ctx.set(dut.w_load, int(st.w_load[t]))
            ctx.set(dut.w_row, int(st.w_row[t]))
            ctx.set(dut.w_data, [int(v) for v in st.w_data[t]])
            ctx.set(dut.w_en, int(st.w_en[t]))
            p = ctx.get(dut.p_out)
            p_out[t] = [p[c] for c in range(n)]
            p_valid[t] = ctx.get(dut.p_valid)
            for r in range(n):
                for c in range(n):
                    x_reg[t, r, c] = ctx.get(pes[r][c].x_out)
                    w_act[t, r, c] = ctx.get(pes[r][c].w_act)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return p_out, p_valid, x_reg, w_act


def check_outputs(n, st, p_out, p_valid, seed):
    lat = SystolicArray(n).latency
    exp = expected_outputs(st)
    T = len(st.valid)
    want_valid = np.zeros(T, bool)
    want_valid[lat:] = st.valid[:T - lat]
    bad = np.flatnonzero(want_valid != p_valid)
    assert not bad.size, (f"seed {seed} n={n}: p_valid wrong at cycles {bad[:10].tolist()} "
                          f"(latency {lat})")
    for t in np.flatnonzero(st.valid):
        assert t + lat < T
        assert np.array_equal(p_out[t + lat], exp[t]), (
            f"seed {seed} n={n}: pixel at cycle {t} (chunk {st.chunk[t]}): p_out at cycle "
            f"{t + lat} is {p_out[t + lat].tolist()}, expected {exp[t].tolist()}")


def check_gating(n, st, x_reg, w_act, seed):
    """PE(r, c) sees input slot j = k - d - r - c at cycle k (d: the array's input register). Its
    x register may change only when the slot is a pixel and some PE at or right of it in its row
    is enabled for the slot's chunk; its active weight only when the slot is a chunk's first
    pixel and it is enabled."""
    T = len(st.valid)
    d = SystolicArray.INPUT_DELAY
    for r in range(n):
        for c in range(n):
            for k in range(r + c + d, T - 1):
                j = k - r - c - d
                i = st.chunk[j]
                if not (st.valid[j] and st.enables[i][r, c:].any()):
                    assert x_reg[k + 1, r, c] == x_reg[k, r, c], (
                        f"seed {seed} n={n}: PE({r},{c}) x register toggled at the end of cycle "
                        f"{k} (slot {j}, chunk {i}, valid {bool(st.valid[j])}, "
                        f"row enables {st.enables[i][r].tolist() if i >= 0 else None})")
                if not (st.first[j] and st.enables[i][r, c]):
                    assert w_act[k + 1, r, c] == w_act[k, r, c], (
                        f"seed {seed} n={n}: PE({r},{c}) active weight changed at the end of "
                        f"cycle {k} (slot {j}, chunk {i}, first {bool(st.first[j])})")


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_array_prefix_enables(n):
    seed = 2000 + n
    rng = np.random.default_rng(seed)
    n_chunks = 6 if n < 8 else 5
    st = make_stimulus(rng, n, n_chunks, "prefix")
    p_out, p_valid, x_reg, w_act = run_array(n, st)
    check_outputs(n, st, p_out, p_valid, seed)
    check_gating(n, st, x_reg, w_act, seed)
    # The sequencer's case named in the brief: a disabled row switches no x register.
    disabled = [(i, r) for i, en in enumerate(st.enables) for r in range(n) if not en[r].any()]
    assert disabled, f"seed {seed}: no chunk with a disabled row"
    for i, r in disabled:
        end = st.starts[i + 1] if i + 1 < len(st.starts) else len(st.valid) - 1
        for c in range(n):
            d = SystolicArray.INPUT_DELAY
            seg = x_reg[st.starts[i] + r + c + d:min(end + r + c + d, len(st.valid) - 1) + 1, r, c]
            assert (seg == seg[0]).all(), (
                f"seed {seed} n={n}: row {r} disabled in chunk {i} but PE({r},{c})'s x register "
                f"toggled")


@pytest.mark.parametrize("n", [3, 8])
def test_array_random_enables(n):
    seed = 3000 + n
    rng = np.random.default_rng(seed)
    st = make_stimulus(rng, n, 5, "random")
    p_out, p_valid, x_reg, w_act = run_array(n, st)
    check_outputs(n, st, p_out, p_valid, seed)
    check_gating(n, st, x_reg, w_act, seed)


def test_array_parameters():
    for n in (2, 8, 16):
        assert SystolicArray(n).latency == 2 * n + 2  # input reg + N-1 skew + N PEs + operand and product regs + N-1 de-skew - overlap
    for bad in (0, 1, 17):
        with pytest.raises(ValueError):
            SystolicArray(bad)
    with pytest.raises(TypeError):
        SystolicArray(8.0)


def test_array_verilog():
    text = verilog.convert(SystolicArray(8), name="systolic_array")
    assert "module systolic_array" in text
    for port in ("x_in", "x_valid", "x_first", "w_load", "w_row", "w_data", "w_en", "p_out",
                 "p_valid"):
        assert port in text, port
