"""The plain int8 MAC grid: the baseline that issue 6's timing target is set against.

Not part of the accelerator. It is the textbook output-stationary systolic grid, written the plain
way: activations move right, weights move down, and each cell adds ``a * b`` to its int32
accumulator in the same cycle as the multiply, so Yosys maps ``*`` onto a MULT18X18D with the
block's input and output registers unused and the route into the multiplier, the multiplier, the
route out and the 32-bit adder form one path. ``python -m hw.flow.synth --design macgrid`` puts it
through the same flow as the accelerator (same wrapper, same devices, same nextpnr options), so
the README can say what the accelerator reaches next to what this grid reaches on the same part.

Per cycle, for cell (i, j) of the n x n grid (``a_in[i]`` enters row i, ``b_in[j]`` column j)::

    a[i][j] <= (0 if clr else a_in[i]) if j == 0 else a[i][j-1]
    b[i][j] <= (0 if clr else b_in[j]) if i == 0 else b[i-1][j]
    acc[i][j] <= 0 if clr_r else acc[i][j] + a[i][j] * b[i][j]     (int32, wraps)
    par[i*n + j] <= XOR of acc[i][j]'s 32 bits
    clr_r <= clr

``pipelined=True`` (``--design macgrid_pipelined``) registers each product before the
accumulator (``p[i][j] <= a[i][j] * b[i][j]``, then ``acc += p``, the clear delayed to match):
the issue's "known fix" in its simplest form, in fabric flip-flops (Yosys still leaves the DSP
block's own registers unused), so the multiplier's path no longer runs on into the carry
chain. Its accumulators hold the plain grid's values a cycle later.

``par`` (one bit per cell, registered) keeps every accumulator bit observable through few
outputs, so nothing is optimised away and no output path is longer than a few LUTs. The operands
entering during a clear are zeros (bubbles between two tiles); this also keeps the operand
registers the grid's own: fed straight from the synthesis wrapper's input shift register, they
would each be a copy of one of its bits, and Yosys merges equal flip-flops across the flattened
design (the rows' and columns' chains would collapse into that shift register).
"""

from pathlib import Path

from amaranth import Module, Mux, Signal, signed
from amaranth.back import verilog
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from model.outputs import write_text

__all__ = ["MacGrid", "generate_macgrid"]


class MacGrid(wiring.Component):
    """An ``n`` x ``n`` output-stationary int8 MAC grid (see the module docstring)."""

    def __init__(self, n: int, pipelined: bool = False):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"MacGrid needs a positive grid size, got {n!r}")
        self.n = n
        self.pipelined = pipelined
        super().__init__({"clr": In(1), "a_in": In(data.ArrayLayout(signed(8), n)),
                          "b_in": In(data.ArrayLayout(signed(8), n)), "par": Out(n * n)})

    def elaborate(self, platform):
        m = Module()
        n = self.n
        clr_r = Signal(name="clr_r")  # the one register with a reset (the grid's clear)
        m.d.sync += clr_r.eq(self.clr)
        clr_acc = clr_r
        if self.pipelined:  # the products reach the accumulators a cycle later, and so does the clear
            clr_acc = Signal(name="clr_p", reset_less=True)
            m.d.sync += clr_acc.eq(clr_r)
        a = [[Signal(signed(8), name=f"a_{i}_{j}", reset_less=True) for j in range(n)] for i in range(n)]
        b = [[Signal(signed(8), name=f"b_{i}_{j}", reset_less=True) for j in range(n)] for i in range(n)]
        acc = [[Signal(signed(32), name=f"acc_{i}_{j}", reset_less=True) for j in range(n)] for i in range(n)]
        par = Signal(n * n, name="par_r", reset_less=True)
        for i in range(n):
            for j in range(n):
                m.d.sync += [a[i][j].eq(Mux(self.clr, 0, self.a_in[i]) if j == 0 else a[i][j - 1]),
                             b[i][j].eq(Mux(self.clr, 0, self.b_in[j]) if i == 0 else b[i - 1][j]),
                             par[i * n + j].eq(acc[i][j].xor())]
                prod = a[i][j] * b[i][j]
                if self.pipelined:
                    p = Signal(signed(16), name=f"p_{i}_{j}", reset_less=True)
                    m.d.sync += p.eq(prod)
                    prod = p
                m.d.sync += acc[i][j].eq(Mux(clr_acc, 0, acc[i][j] + prod))
        m.d.comb += self.par.eq(par)
        return m


def generate_macgrid(grid: MacGrid, out_dir) -> Path:
    """Write ``grid``'s Verilog, ``macgrid[_pipelined]_<n>x<n>.v``, into ``out_dir`` (complete or
    not at all); return its path."""
    name = f"macgrid{'_pipelined' if grid.pipelined else ''}_{grid.n}x{grid.n}"
    return write_text(Path(out_dir) / f"{name}.v", verilog.convert(grid, name=name, emit_src=False))
