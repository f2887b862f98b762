# amaranth: UnusedElaboratable=no
"""hw.gateware.postproc.Requant in amaranth.sim against model.golden.requantize (the arithmetic contract)."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from hw.gateware.postproc import Requant
from model.export import M_MAX, S_MAX
from model.golden import INT32_MAX, INT32_MIN, requantize

LANES = 4


def run_requant(acc, M, S, relu, valid, n=LANES, zero=None):
    """Stream vectors (acc/M/S/zero: (T, n), relu/valid: (T,)) one per cycle; return (y (T', n),
    y_valid (T',)) sampled every cycle, T' = T + latency + 2."""
    dut = Requant(n)
    T = len(valid)
    zero = np.zeros((T, n), bool) if zero is None else zero
    T_out = T + dut.latency + 2
    y = np.zeros((T_out, n), np.int64)
    y_valid = np.zeros(T_out, bool)

    async def tb(ctx):
        for t in range(T_out):  # bounded: exactly T_out cycles
            if t < T:
                ctx.set(dut.acc, [int(v) for v in acc[t]])
                ctx.set(dut.m, [int(v) for v in M[t]])
                ctx.set(dut.s, [int(v) for v in S[t]])
                ctx.set(dut.relu, int(relu[t]))
                ctx.set(dut.valid, int(valid[t]))
                ctx.set(dut.zero, sum(1 << i for i in range(n) if zero[t, i]))
            else:
                ctx.set(dut.valid, 0)
            out = ctx.get(dut.y)
            y[t] = [out[i] for i in range(n)]
            y_valid[t] = ctx.get(dut.y_valid)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return y, y_valid, dut.latency


def check(acc, M, S, relu, valid, seed, n=LANES, zero=None):
    y, y_valid, lat = run_requant(acc, M, S, relu, valid, n, zero)
    T = len(valid)
    want_valid = np.zeros(len(y_valid), bool)
    want_valid[lat:lat + T] = valid
    bad = np.flatnonzero(want_valid != y_valid)
    assert not bad.size, f"seed {seed}: y_valid wrong at cycles {bad[:10].tolist()} (latency {lat})"
    for t in np.flatnonzero(valid):
        S_ref = np.minimum(S[t], S_MAX)  # 48..63 are documented as 47
        want = requantize(acc[t], M[t], S_ref, bool(relu[t])).astype(np.int64)
        if zero is not None:
            want[zero[t]] = 0  # masked lanes (the sequencer's invalid columns) give 0
        assert np.array_equal(y[t + lat], want), (
            f"seed {seed}: cycle {t}: acc={acc[t].tolist()} M={M[t].tolist()} S={S[t].tolist()} "
            f"relu={bool(relu[t])}: got {y[t + lat].tolist()}, golden {want.tolist()}")


def corner_cases():
    """(acc, M, S, relu) rows covering the contract's edges."""
    rows = []
    for relu in (False, True):
        for acc in (INT32_MIN, INT32_MAX, -1, 0, 1):
            for M in (1, M_MAX):
                for S in (0, 1, 8, 31, 46, 47):
                    rows.append((acc, M, S, relu))
        # Exactly .5 with S = 1 (odd accumulators, M = 1): half up, towards +inf.
        for acc in (-5, -3, -1, 1, 3, 5, -255, -257, 253, 255, 257):
            rows.append((acc, 1, 1, relu))
        # .5 at larger shifts, negative and positive.
        for S in (2, 7, 16, 30):
            for acc in (-(3 << (S - 1)), -(1 << (S - 1)), 1 << (S - 1), 3 << (S - 1)):
                rows.append((acc, 1, S, relu))
        # Saturation at both ends, and just inside.
        for acc in (127, 128, -128, -129, 1000, -1000, 254, 255, -256, -257):
            for S in (0, 1):
                rows.append((acc, 1, S, relu))
        # The largest products: |acc * M| near 2**47, shifted all the way.
        for acc in (INT32_MIN, INT32_MAX, INT32_MIN + 1):
            for S in (38, 39, 40, 45):
                rows.append((acc, M_MAX, S, relu))
    return rows


def as_stream(rows, n):
    """Pack rows into (T, n) lane vectors; relu must be uniform per vector, so group by relu."""
    out = []
    for relu in (False, True):
        sel = [r for r in rows if r[3] == relu]
        sel += [sel[-1]] * (-len(sel) % n)
        for k in range(0, len(sel), n):
            out.append((sel[k:k + n], relu))
    acc = np.array([[r[0] for r in v] for v, _ in out], np.int64)
    M = np.array([[r[1] for r in v] for v, _ in out], np.int64)
    S = np.array([[r[2] for r in v] for v, _ in out], np.int64)
    relu = np.array([r for _, r in out], bool)
    return acc, M, S, relu


def test_requant_corner_cases():
    acc, M, S, relu = as_stream(corner_cases(), LANES)
    check(acc, M, S, relu, np.ones(len(relu), bool), seed="corner")


def test_requant_shift_above_47_is_47():
    acc = np.array([[INT32_MIN, INT32_MAX, -1, 12345]] * 2, np.int64)
    M = np.full((2, LANES), M_MAX, np.int64)
    S = np.array([[48, 55, 63, 60], [63, 48, 49, 63]], np.int64)
    check(acc, M, S, np.array([False, True]), np.ones(2, bool), seed="S>47")


def random_stream(rng, T, n):
    """Accumulators of every magnitude, M in 1..65535, and S near the value that lands the result
    in int8 (so rounding and both saturation ends all occur)."""
    bits = rng.integers(0, 32, size=(T, n))
    acc = rng.integers(-(1 << 31), 1 << 31, size=(T, n), dtype=np.int64) >> (31 - bits)
    acc[rng.random((T, n)) < 0.03] = INT32_MIN
    acc[rng.random((T, n)) < 0.03] = INT32_MAX
    M = rng.integers(1, M_MAX + 1, size=(T, n))
    M[rng.random((T, n)) < 0.05] = 1
    M[rng.random((T, n)) < 0.05] = M_MAX
    mag = np.floor(np.log2(np.abs(acc.astype(np.float64)) * M + 1)).astype(np.int64)
    S = np.clip(mag - 7 + rng.integers(-3, 4, size=(T, n)), 0, S_MAX)
    S[rng.random((T, n)) < 0.05] = 0
    S[rng.random((T, n)) < 0.05] = S_MAX
    relu = rng.random(T) < 0.5
    return acc, M, S, relu


@pytest.mark.parametrize("gaps", [False, True], ids=["back_to_back", "with_gaps"])
def test_requant_random(gaps):
    seed = 4242 + gaps
    rng = np.random.default_rng(seed)
    T = 500 // LANES  # 500 values
    acc, M, S, relu = random_stream(rng, T, LANES)
    valid = rng.random(T) < 0.6 if gaps else np.ones(T, bool)
    valid[0] = True
    check(acc, M, S, relu, valid, seed)


def test_requant_zero_mask():
    """Lanes with their zero bit set give 0, the others the golden value, every cycle's mask its own."""
    seed = 4300
    rng = np.random.default_rng(seed)
    T = 200 // LANES
    acc, M, S, relu = random_stream(rng, T, LANES)
    zero = rng.random((T, LANES)) < 0.4
    valid = rng.random(T) < 0.7
    valid[0] = True
    check(acc, M, S, relu, valid, seed, zero=zero)


def test_requant_parameters():
    assert Requant(8).latency == 5
    assert Requant(1).n == 1
    for bad in (0, -1):
        with pytest.raises(ValueError):
            Requant(bad)
    with pytest.raises(TypeError):
        Requant("8")


def test_requant_verilog():
    text = verilog.convert(Requant(8), name="requant")
    assert "module requant" in text
    for port in ("acc", "m", "s", "relu", "valid", "y", "y_valid"):
        assert port in text, port
