"""One weight-stationary processing element of the systolic array (docs/design.md).

No `from __future__ import annotations` here: wiring reads the port annotations as objects.
"""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .dsp import ecp5_dsp, mult18x18d

__all__ = ["ProcessingElement"]


class ProcessingElement(wiring.Component):
    """Weight-stationary int8 x int8 -> int32 multiply-accumulate cell.

    The weight is double-buffered: a shadow weight and enable (``w_sh``, ``en_sh``) are written
    through the row's shadow-write port while the active pair (``w_act``, ``en_act``) serves the
    current chunk; the active pair takes the shadow pair when a pixel tagged ``first`` arrives
    from the left, and that pixel already uses the new pair. Per cycle, with
    ``e = en_sh if first else en_act`` and ``w = w_sh if first else w_act``::

        (x_m, w_m, mac_m) <= (x, w, valid & e)   (x_m, w_m only when valid & e)
        prod   <= x_m * w_m if mac_m else 0
        p_out  <= p_top + prod
        x_out  <= x if valid & (e | f) else x_out
        (valid_out, first_out) <= (valid, first)

The multiplier has registers on both sides (operands ``x_m``/``w_m``, product ``prod``), so the
weight select, the route into the multiplier, the multiplier and the 32-bit adder are in
different cycles: that is what lets the MAC grid close timing on an FPGA (Yosys does not use the
DSP block's own input and output registers). A pixel's partial sum therefore leaves the PE
three cycles after its activation arrives, while the activation moves on after one; every PE of
a column is one cycle later in the same way, so the column's sums still meet (PE (r, c) adds
``p_top`` from PE (r-1, c), whose pixel arrived one cycle earlier, to its own product).

    ``f`` is the shadow/active *forward* bit (``w_fwd``): some PE further right in this row is
    enabled for the chunk, so the activation must keep moving through this PE even though it does
    no MAC itself. With the sequencer's enable patterns (a prefix of rows and a prefix of columns)
    ``f`` implies ``e`` and the rule is exactly docs/design.md's ``x_reg <= x if valid & e``.

    Gating: a PE that does no MAC adds 0 (sums wrap modulo 2**32, which the contract's int32
    accumulators never reach); a PE with ``e | f == 0`` (or a bubble) holds ``x_out``; weight
    registers of a PE disabled for a chunk hold (``w_sh`` is written only when ``w_en``, so under
    the sequencer's load rule the swap copies an equal value into ``w_act``). Latency: one cycle
    from ``x``/``valid``/``first`` to ``x_out``/``valid_out``/``first_out`` and from ``p_top`` to
    ``p_out``; three cycles from ``x`` to ``p_out``.

    Members
    -------
    x : In(signed(8))
        Activation from the left neighbour (or the row's skew register).
    valid : In(1)
        ``x`` is a pixel (0: bubble).
    first : In(1)
        ``x`` is the first pixel of a chunk: swap the shadow weight in.
    p_top : In(signed(32))
        Partial sum from the PE above (0 for the top row).
    w_load : In(1)
        Shadow write strobe for this PE's row (takes effect at the end of the cycle).
    w_data : In(signed(8))
        Shadow weight.
    w_en : In(1)
        Shadow enable: this PE does MACs in the loaded chunk.
    w_fwd : In(1)
        Shadow forward bit: a PE to the right in this row is enabled in the loaded chunk.
    x_out, valid_out, first_out : Out(signed(8)), Out(1), Out(1)
        Registered ``x``/``valid``/``first`` for the right neighbour.
    p_out : Out(signed(32))
        Registered partial sum for the PE below: ``p_top`` of the previous cycle plus the product
        of the activation of three cycles ago.

    Attributes ``w_sh``, ``en_sh``, ``fwd_sh``, ``w_act``, ``en_act``, ``fwd_act`` are the state
    registers (exposed for tests and waveforms).

    ``row``: the PE's row in the array. It matters only when the design is elaborated for the ECP5
    synthesis target (``hw.gateware.dsp.Ecp5Dsp`` as the platform): a row the target puts on DSP blocks
    builds the operand registers, the multiplier and the product register as one MULT18X18D,
    with the same product cycle for cycle (its operand registers load every cycle, ``x`` gated to
    0 without a MAC).
    """

    x: In(signed(8))
    valid: In(1)
    first: In(1)
    p_top: In(signed(32))
    w_load: In(1)
    w_data: In(signed(8))
    w_en: In(1)
    w_fwd: In(1)
    x_out: Out(signed(8))
    valid_out: Out(1)
    first_out: Out(1)
    p_out: Out(signed(32))

    def __init__(self, row: int = 0):
        super().__init__()
        self.row = row
        # Data registers have no reset (only the control bits do): every value is written before
        # a valid pixel or an enabled chunk reads it, and the reset net stays small on an FPGA.
        self.w_sh = Signal(signed(8), reset_less=True)
        self.en_sh = Signal()
        self.fwd_sh = Signal()
        self.w_act = Signal(signed(8), reset_less=True)
        self.en_act = Signal()
        self.fwd_act = Signal()
        self.prod = Signal(signed(16), reset_less=True)
        self._x_m = Signal(signed(8), reset_less=True)  # the multiplier's operand registers
        self._w_m = Signal(signed(8), reset_less=True)
        self._mac_m = Signal()
        self._x_q = Signal(signed(8), reset_less=True)
        self._p_q = Signal(signed(32), reset_less=True)

    def elaborate(self, platform):
        m = Module()

        # The pixel tagged `first` is the new chunk's: it uses the shadow pair directly.
        e = Mux(self.first, self.en_sh, self.en_act)
        f = Mux(self.first, self.fwd_sh, self.fwd_act)
        w = Mux(self.first, self.w_sh, self.w_act)
        mac = self.valid & e

        with m.If(self.w_load):
            m.d.sync += [self.en_sh.eq(self.w_en), self.fwd_sh.eq(self.w_fwd)]
            with m.If(self.w_en):
                m.d.sync += self.w_sh.eq(self.w_data)

        with m.If(self.first):
            # w_sh only changes for an enabled chunk, so for a disabled one w_act == w_sh here
            # already: the copy does not toggle it.
            m.d.sync += [self.w_act.eq(self.w_sh), self.en_act.eq(self.en_sh),
                         self.fwd_act.eq(self.fwd_sh)]

        # operand registers: the multiplier (a DSP block on an FPGA) sees registers only, so the
        # weight select and the route to the DSP are a cycle of their own; they load only for a MAC
        dsp = ecp5_dsp(platform)
        if dsp is not None and dsp.pe_on_dsp(self.row):
            # The operand and product registers inside a MULT18X18D. A block of four multipliers
            # shares four clock-enable and four reset nets, so the PE's own MAC flag can be
            # neither: the registers load every cycle, and a cycle without a MAC multiplies 0
            # (x_m = x if mac else 0), which is the product register's 0 a cycle later.
            p = mult18x18d(m, "mul", Mux(mac, self.x, 0), w, signed=True, reg_in=True, reg_out=True)
            m.d.comb += self.prod.eq(p[:16])
        else:
            m.d.sync += self._mac_m.eq(mac)
            with m.If(mac):
                m.d.sync += [self._x_m.eq(self.x), self._w_m.eq(w)]
            m.d.sync += self.prod.eq(Mux(self._mac_m, self._x_m * self._w_m, 0))
        with m.If(self.valid & (e | f)):
            m.d.sync += self._x_q.eq(self.x)
        m.d.comb += [self.x_out.eq(self._x_q), self.p_out.eq(self._p_q)]
        m.d.sync += [
            self.valid_out.eq(self.valid),
            self.first_out.eq(self.first),
            self._p_q.eq(self.p_top + self.prod),
        ]
        return m
