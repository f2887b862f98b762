"""Weight-stationary N x N systolic array with input skew and output de-skew (docs/design.md)."""
from __future__ import annotations

from amaranth import Cat, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .pe import ProcessingElement

__all__ = ["SystolicArray"]

N_MIN, N_MAX = 2, 16


class SystolicArray(wiring.Component):
    """N x N weight-stationary int8 x int8 -> int32 systolic array.

    Rows carry the reduction (input channels), columns the output channels; one pixel (an
    N-vector of int8) enters per cycle. A pixel presented at cycle ``t`` on ``x_in``/``x_valid``/
    ``x_first`` comes out at cycle ``t + latency`` (``latency = 2N + 2``, see ``latency``) as::

        p_out[c] = sum_r en[r, c] * x_in[r] * w[r, c]        (int32, wraps modulo 2**32)
        p_valid  = x_valid

    where ``w``/``en`` are the weights/enables of the pixel's chunk. Row ``r`` is delayed ``r``
    cycles on entry (skew), column ``c`` ``N - 1 - c`` cycles on exit (de-skew). ``p_out`` is
    meaningful only while ``p_valid``; the array carries no other tag.

    Weights are double-buffered per PE. ``w_load`` at the end of a cycle writes the shadow weight
    ``w_data[c]`` and enable ``w_en[c]`` of every PE ``(w_row, c)``; a PE swaps its shadow pair in
    when the pixel tagged ``x_first`` reaches it, and that pixel already uses the new pair.
    Sequencer rule (no PE loses a weight): the first chunk's rows are written before its first
    pixel; row ``r`` of chunk ``i + 1`` is written at cycle ``s_i + N + r`` (``s_i``: cycle of
    chunk ``i``'s first pixel), and chunk ``i + 1`` starts no earlier than ``s_i + N + 1``, so
    the chunk period is ``max(P, N + 1)`` for ``P`` pixels.

    Gating: a PE disabled for a chunk adds 0, holds its weight registers, and holds its
    activation register unless a PE to its right in the same row is enabled (never the case for
    the sequencer's prefix enable patterns: a disabled row or column switches nothing but the
    valid/first tags and partial sums passing through). Skew and de-skew registers hold during
    bubbles (``x_valid == 0``).

    Parameters
    ----------
    n : int
        Array size N, 2..16.

    Members
    -------
    x_in : In(ArrayLayout(signed(8), N))
        Activations, one per row.
    x_valid : In(1)
        ``x_in`` is a pixel (0: bubble).
    x_first : In(1)
        First pixel of a chunk (must come with ``x_valid``).
    w_load : In(1)
        Shadow weight write strobe.
    w_row : In(range(N))
        Row written by ``w_load``.
    w_data : In(ArrayLayout(signed(8), N))
        Shadow weights of row ``w_row``, one per column.
    w_en : In(N)
        Shadow enables of row ``w_row``, bit ``c`` for column ``c``.
    p_out : Out(ArrayLayout(signed(32), N))
        Partial sums, one per column, aligned (de-skewed).
    p_valid : Out(1)
        ``x_valid`` delayed by ``latency``.
    """

    INPUT_DELAY = 1  # the input register: every port takes effect one cycle after it is driven

    def __init__(self, n: int = 8):
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"array size must be an int, not {n!r}")
        if not N_MIN <= n <= N_MAX:
            raise ValueError(f"array size must be in {N_MIN}..{N_MAX}, not {n}")
        self._n = n
        super().__init__({
            "x_in": In(data.ArrayLayout(signed(8), n)),
            "x_valid": In(1),
            "x_first": In(1),
            "w_load": In(1),
            "w_row": In(range(n)),
            "w_data": In(data.ArrayLayout(signed(8), n)),
            "w_en": In(n),
            "p_out": Out(data.ArrayLayout(signed(32), n)),
            "p_valid": Out(1),
        })
        self._pes = None  # the PE grid, created once on first use (see `pe`)

    @property
    def n(self) -> int:
        """Array size N (rows == columns)."""
        return self._n

    @property
    def latency(self) -> int:
        """Cycles from a pixel on ``x_in`` to its sums on ``p_out``: ``2N + 2``. With the input
        register (``INPUT_DELAY`` = 1), row r's PE in column c sees the pixel at t + 1 + r + c and
        its partial sum leaves at t + 4 + r + c (the PE's operand and product registers); column c
        leaves the bottom row at t + N + 3 + c and N - 1 - c de-skew registers align every column
        at t + 2N + 2."""
        return 2 * self._n + self.INPUT_DELAY + 1

    def pe(self, r: int, c: int) -> ProcessingElement:
        """The PE at row ``r``, column ``c`` (submodule ``pe_{r}_{c}``), for tests and waveforms.

        The grid is created once, so the PE returned here is the one every elaboration uses."""
        if self._pes is None:
            n = self._n
            self._pes = tuple(tuple(ProcessingElement(row=r) for _ in range(n)) for r in range(n))
        return self._pes[r][c]

    def elaborate(self, platform):
        m = Module()
        n = self._n
        self.pe(0, 0)  # create the grid

        # Input register: every port one cycle late (INPUT_DELAY), so no PE multiplier sees a
        # memory's output through logic; the ports keep their timing relative to each other.
        # Data registers (here, in the skew and de-skew and in the PEs) have no reset: each is
        # written before a valid tag reads it, and the FPGA's reset net stays small.
        x_in = [Signal(signed(8), name=f"x_in_r{r}", reset_less=True) for r in range(n)]
        x_valid, x_first = Signal(name="x_valid_r"), Signal(name="x_first_r")
        w_load, w_row = Signal(name="w_load_r"), Signal(range(n), name="w_row_r")
        w_data = [Signal(signed(8), name=f"w_data_r{c}", reset_less=True) for c in range(n)]
        w_en = Signal(n, name="w_en_r")
        # column c's "a later column loads" flag, registered beside w_en from the same input: as
        # ``w_en[c + 1:].any()`` behind the register it was a chain of ORs through LUTs next
        # to the PEs of every column (6 LUTs and 10 ns of routing on the ECP5-45F)
        w_fwd = Signal(n, name="w_fwd_r")
        m.d.sync += [x_valid.eq(self.x_valid), x_first.eq(self.x_first), w_load.eq(self.w_load),
                     w_row.eq(self.w_row), w_en.eq(self.w_en),
                     w_fwd.eq(Cat(*[self.w_en[c + 1:].any() for c in range(n - 1)], 0))]
        m.d.sync += [w_data[c].eq(self.w_data[c]) for c in range(n)]
        with m.If(self.x_valid):
            m.d.sync += [x_in[r].eq(self.x_in[r]) for r in range(n)]

        for r in range(n):
            # Input skew: row r enters r cycles late, so that its partial sum meets row r - 1's.
            x, valid, first = x_in[r], x_valid, x_first
            for k in range(r):
                x_d = Signal(signed(8), name=f"x_skew_{r}_{k}", reset_less=True)
                valid_d = Signal(name=f"valid_skew_{r}_{k}")
                first_d = Signal(name=f"first_skew_{r}_{k}")
                m.d.sync += [valid_d.eq(valid), first_d.eq(first)]
                with m.If(valid):
                    m.d.sync += x_d.eq(x)
                x, valid, first = x_d, valid_d, first_d

            load = Signal(name=f"w_load_{r}")
            m.d.comb += load.eq(w_load & (w_row == r))
            for c in range(n):
                pe = self._pes[r][c]
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += [
                    pe.x.eq(x),
                    pe.valid.eq(valid),
                    pe.first.eq(first),
                    pe.p_top.eq(self._pes[r - 1][c].p_out if r else 0),
                    pe.w_load.eq(load),
                    pe.w_data.eq(w_data[c]),
                    pe.w_en.eq(w_en[c]),
                    pe.w_fwd.eq(w_fwd[c]),
                ]
                x, valid, first = pe.x_out, pe.valid_out, pe.first_out

        # Output de-skew: column c leaves the bottom row at t + N + 3 + c; N - 1 - c more
        # registers align every column at t + 2N + 2. The pixel in de-skew stage k of column c is
        # the one whose valid tag left bottom-row PE (N - 1, c + k) two cycles before (the
        # operand and product registers' cycles): that delayed tag gates the stage.
        bottom = self._pes[n - 1]
        vm = [Signal(name=f"valid_op_{c}") for c in range(n)]
        vd = [Signal(name=f"valid_prod_{c}") for c in range(n)]
        m.d.sync += [vm[c].eq(bottom[c].valid_out) for c in range(n)]
        m.d.sync += [vd[c].eq(vm[c]) for c in range(n)]
        for c in range(n):
            p = bottom[c].p_out
            for k in range(n - 1 - c):
                p_d = Signal(signed(32), name=f"p_deskew_{c}_{k}", reset_less=True)
                with m.If(vd[c + k]):
                    m.d.sync += p_d.eq(p)
                p = p_d
            m.d.comb += self.p_out[c].eq(p)
        m.d.comb += self.p_valid.eq(vd[n - 1])
        return m
