"""Post-processing lanes: requantize, ReLU, saturate (the arithmetic contract, docs/contract.md)."""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from model.export import S_MAX  # the largest shift the contract allows

from .dsp import ecp5_dsp, mult18x18d

__all__ = ["Requant"]

_PROD_BITS = 48  # |acc * M| <= 2**31 * (2**16 - 1) < 2**47: signed(48) holds every product
_SUM_BITS = 49  # product + rounding constant (<= 2**46): signed(49) with room to spare


class Requant(wiring.Component):
    """``n`` requantization lanes, pipelined, one vector per cycle.

    Per lane, bit-exact with ``model.golden.requantize`` (bias is already in ``acc``)::

        y = (acc * m + (1 << (s - 1) if s > 0 else 0)) >> s     (arithmetic shift, >= 48 bits)
        y = max(y, 0) if relu
        y = clamp(y, -128, 127)
        y = 0 if zero (the lane's mask bit)

    ``m`` is the positive 16-bit multiplier (1..65535; 0 gives 0), ``s`` the shift 0..47.
    Shifts 48..63 (never produced by the export) are treated as 47.

    Latency: 5 cycles, constant (``latency``): stage 1 multiplies in two halves (the low 17 bits
    and the high 15 bits of ``acc`` times ``m``: one 18 x 18 DSP block each, both products
    registered; elaborated for the ECP5 synthesis target, ``hw.gateware.dsp.Ecp5Dsp``, those registers
    are the MULT18X18D blocks' own output registers), stage 2 joins them, stage 3 adds the
    rounding constant, stage 4 shifts by whole bytes, stage 5 selects the result's 8 bits and
    applies ReLU and saturation (a mask compare; no barrel shifter). A vector presented with
    ``valid`` at cycle ``t`` appears on ``y`` with ``y_valid`` at ``t + 5``; ``y`` is meaningful
    only while ``y_valid``. A lane whose ``zero`` bit is set with the vector gives 0 (the
    sequencer's column mask, applied in stage 5's priority select, so ``y`` is the masked value
    straight from a register). The data registers have no enable: every stage loads every cycle
    (bubbles included), so no valid bit fans out to the lanes' hundreds of data flip-flops (on
    an FPGA such an enable is a net of ~70 loads per lane on general routing, in the output
    stage where routing is scarcest); only the valid bits, the ReLU flag and the ``zero`` mask
    travel as a control pipeline.

    Parameters
    ----------
    n : int
        Number of lanes (>= 1).

    Members
    -------
    acc : In(ArrayLayout(signed(32), n))
        int32 accumulators (bias included).
    m : In(ArrayLayout(unsigned(16), n))
        Per-lane multiplier.
    s : In(ArrayLayout(unsigned(6), n))
        Per-lane right shift.
    relu : In(1)
        Apply ReLU to every lane.
    valid : In(1)
        The inputs are a vector to requantize.
    zero : In(n)
        Lanes to output as 0 (0: none).
    y : Out(ArrayLayout(signed(8), n))
        int8 results.
    y_valid : Out(1)
        ``valid`` delayed by ``latency``.
    """

    LATENCY = 5

    def __init__(self, n: int = 8):
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"lane count must be an int, not {n!r}")
        if n < 1:
            raise ValueError(f"lane count must be at least 1, not {n}")
        self._n = n
        super().__init__({
            "acc": In(data.ArrayLayout(signed(32), n)),
            "m": In(data.ArrayLayout(unsigned(16), n)),
            "s": In(data.ArrayLayout(unsigned(6), n)),
            "relu": In(1),
            "valid": In(1),
            "zero": In(n),
            "y": Out(data.ArrayLayout(signed(8), n)),
            "y_valid": Out(1),
        })

    @property
    def n(self) -> int:
        """Number of lanes."""
        return self._n

    @property
    def latency(self) -> int:
        """Cycles from ``valid`` to ``y_valid`` (constant): 5."""
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()

        # valid0 .. valid5: the stage inputs' and outputs' valid bits; relu rides along
        valid0, valid1, valid2, valid3, valid4, valid5 = (self.valid, Signal(), Signal(), Signal(), Signal(),
                                                          Signal())
        relu1, relu2, relu3, relu4 = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [valid1.eq(valid0), valid2.eq(valid1), valid3.eq(valid2), valid4.eq(valid3),
                     valid5.eq(valid4)]
        m.d.comb += self.y_valid.eq(valid5)
        m.d.sync += [relu1.eq(self.relu), relu2.eq(relu1), relu3.eq(relu2), relu4.eq(relu3)]
        zero1, zero2, zero3, zero4 = (Signal(self._n, name=f"zero{k}", reset_less=True) for k in range(1, 5))
        m.d.sync += [zero1.eq(self.zero), zero2.eq(zero1), zero3.eq(zero2), zero4.eq(zero3)]

        for i in range(self._n):
            # Stage 1: acc * m in two halves, acc = hi * 2**17 + lo (lo the unsigned low 17 bits,
            # hi the signed high 15): each product fits one 18 x 18 multiplier and is registered,
            # so no adder follows a DSP block in the same cycle. Shift saturated to 47. The data
            # registers have no reset and no enable: a stage's value is used only in the cycle
            # its valid bit is set.
            acc = self.acc[i]
            p_lo = Signal(unsigned(33), name=f"p_lo_{i}", reset_less=True)
            p_hi = Signal(signed(32), name=f"p_hi_{i}", reset_less=True)
            s0 = Signal(range(S_MAX + 1), name=f"s0_{i}", reset_less=True)
            m.d.sync += s0.eq(Mux(self.s[i] > S_MAX, S_MAX, self.s[i]))
            if ecp5_dsp(platform) is not None:
                # the product registers are the DSP blocks' output registers (hw/gateware/dsp.py)
                lo = mult18x18d(m, f"mul_lo_{i}", acc[:17], self.m[i], signed=False, reg_in=False,
                                reg_out=True)
                hi = mult18x18d(m, f"mul_hi_{i}", acc[17:].as_signed(), self.m[i], signed=True,
                                reg_in=False, reg_out=True)
                m.d.comb += [p_lo.eq(lo[:33]), p_hi.eq(hi[:32])]
            else:
                m.d.sync += [p_lo.eq(acc[:17] * self.m[i]), p_hi.eq(acc[17:].as_signed() * self.m[i])]

            # Stage 2: the product, joined.
            prod = Signal(signed(_PROD_BITS), name=f"prod_{i}", reset_less=True)
            s1 = Signal(range(S_MAX + 1), name=f"s1_{i}", reset_less=True)
            m.d.sync += [prod.eq((p_hi << 17) + p_lo), s1.eq(s0)]

            # Stage 3: round half up (no shift yet).
            rounding = Signal(S_MAX, name=f"rounding_{i}")  # 1 << (s - 1) <= 2**46
            m.d.comb += rounding.eq(Mux(s1 == 0, 0, Const(1, S_MAX) << (s1 - 1)[:6]))
            rounded = Signal(signed(_SUM_BITS), name=f"rounded_{i}", reset_less=True)
            s2 = Signal(range(S_MAX + 1), name=f"s2_{i}", reset_less=True)
            m.d.sync += [rounded.eq(prod + rounding), s2.eq(s1)]

            # Stages 4 and 5: the arithmetic shift, ReLU and saturation without a barrel shifter.
            # With t = rounded and q = t >> s: q fits int8 iff bits s+7 .. top of t all equal t's
            # sign, and then q is the 8 bits of t from bit s; otherwise q saturates by its sign.
            # ReLU zeroes every negative q (q < 0 iff t < 0). Stage 4 shifts by whole bytes
            # (s // 8, sign-extending), stage 5 selects the 8 bits at s % 8 and checks the bits
            # from s % 8 + 7 up.
            ext = Signal(signed(_SUM_BITS + 8), name=f"ext_{i}")  # room for s + 7 <= 54
            m.d.comb += ext.eq(rounded)
            coarse = Signal(signed(len(ext)), name=f"coarse_{i}", reset_less=True)
            fine = Signal(3, name=f"fine_{i}", reset_less=True)
            m.d.sync += [coarse.eq(ext >> Cat(Const(0, 3), s2[3:])), fine.eq(s2[:3])]
            sign = coarse[-1]
            hi = [Const(k, 4) >= fine + 7 if k < 15 else Const(1, 1) for k in range(len(coarse))]
            ones = Cat(*[~hi[k] | coarse[k] for k in range(len(coarse))]).all()
            zeros = Cat(*[~hi[k] | ~coarse[k] for k in range(len(coarse))]).all()
            y = Signal(signed(8), name=f"y_{i}", reset_less=True)
            with m.If((relu4 & sign) | zero4[i]):
                m.d.sync += y.eq(0)
            with m.Elif(ones | zeros):
                m.d.sync += y.eq(coarse.bit_select(fine, 8))
            with m.Elif(sign):
                m.d.sync += y.eq(-128)
            with m.Else():
                m.d.sync += y.eq(127)
            m.d.comb += self.y[i].eq(y)
        return m
