"""The weight loader: N rows of the next chunk's weights from the weight memory into the array's
shadow registers while the current chunk streams (PRELOAD for the first chunk).

Contract: a load starts N cycles after SETUP (``ld_timer``), reads rows ``w_base + wchunk*N +
r`` for r < N, and writes row r into the shadow registers ``READ_LATENCY`` cycles after its read
(rows past the chunk's valid rows, and columns past its valid columns, load 0 and are disabled).
A row past the weight memory's end is ``ld_overflow`` (the FSM fails the layer with BAD_SHAPE).
"""
from amaranth import Cat, Const, Mux, Signal

from ...contract.schedule import READ_LATENCY


def build(m, seq, platform, ctx):
    """The loader's registers and its two-stage write into the array's shadow registers."""
    (LOGN, N, arr, cfg, emit_advance, ld, w_base) = ctx.take(
        "LOGN N arr cfg emit_advance ld w_base")
    ld_active = Signal(name="ld_active")
    ld_r = Signal(range(N), name="ld_r")
    ld_timer = Signal(range(N + 2), name="ld_timer")
    # a load starts this cycle (ld_timer == 1): a register, set as ld_timer steps 2 -> 1 (the
    # timer's other loads, N in SETUP and 0 on a failure, clear it), so no compare of the timer
    # sits in front of the loader's registers (w_word, w_over, ld_r, ld_active)
    ld_go = Signal()
    # the load's row, its valid bit and enables, as the word read for it comes out of the
    # register behind the weight memory (READ_LATENCY cycles after the read): a stage with
    # the row's fields (wl0_*), then one with the row check and the column enables decoded
    wl0_valid = Signal(name="wl0_valid")
    wl0_row = Signal(range(N), name="wl0_row")
    wl0_rv = Signal(range(N + 1), name="wl0_rv")
    wl0_cols = Signal(range(N + 1), name="wl0_cols")
    wl_valid = Signal(name="wl_valid")
    wl_row = Signal(range(N), name="wl_row")
    wl_ok = Signal(name="wl_ok")  # the row is read (wl0_row < wl0_rv)
    wl_en = Signal(N, name="wl_en")  # and its columns' enables
    # the weight word read (w_base + wchunk * N + ld_r, mod 2**32) and whether it is past the
    # weight memory: registers, set when a load starts and stepped with ld_r
    w_word, w_over = Signal(32, name="w_word"), Signal(name="w_over")
    # whether the load's row is read (ld_r < ld.rv), a register stepped with ld_r: `ld` steps
    # only in a load's last cycle (ld_adv) and in DECODE, when no load runs, so ld.rv holds
    # while a load runs; no compare sits between the iterator and the overflow check, which
    # every state's guard turns into a failure's loads (``ld_rv -> dsel`` was critical at speed 8)
    ld_rowin = Signal(name="ld_rowin")
    m.d.comb += [seq.w_addr.eq(w_word), seq.w_re.eq(ld_active & ld_rowin)]
    ld_overflow = Signal()
    m.d.comb += ld_overflow.eq(ld_active & ld_rowin & w_over)
    assert READ_LATENCY == 2  # the two stages below
    m.d.sync += [wl0_valid.eq(ld_active), wl0_row.eq(ld_r), wl0_rv.eq(ld.rv), wl0_cols.eq(ld.cols)]
    m.d.sync += [wl_valid.eq(wl0_valid), wl_row.eq(wl0_row), wl_ok.eq(wl0_row < wl0_rv),
                 wl_en.eq(Mux(wl0_row < wl0_rv, Cat(*[Const(c, 8) < wl0_cols for c in range(N)]), 0))]

    first_word = Signal(32)  # of the load that starts (from ld_go, or at the end of DECODE)
    m.d.comb += first_word.eq(w_base + (ld.wchunk << LOGN))

    def ld_start():
        return [ld_active.eq(1), ld_r.eq(0), w_word.eq(first_word), w_over.eq(first_word >= cfg.wgt_depth),
                ld_rowin.eq(ld.rv != 0)]

    # `ld` steps with the load's last row (ld_r == N - 1) unless a load starts in that cycle:
    # a strobe registered a cycle ahead (ld_go's next value is ld_timer == 2 but in SETUP,
    # which loads the timer, and a failure clears both), so neither the row compare nor the
    # timer is in front of the iterator's enables (its ~25 registers, hundreds of bits)
    ld_adv, ld_adv_row = Signal(name="ld_adv"), Signal(name="ld_adv_row")
    m.d.comb += ld_adv_row.eq(ld_active & ~ld_go & (ld_r == N - 2))
    m.d.sync += ld_adv.eq(ld_adv_row & (ld_timer != 2))
    with m.If(ld_go):
        m.d.sync += ld_start()
    with m.Elif(ld_active):
        next_word = Signal(32)
        m.d.comb += next_word.eq(w_word + 1)
        m.d.sync += [ld_r.eq(ld_r + 1), w_word.eq(next_word), w_over.eq(next_word >= cfg.wgt_depth),
                     ld_rowin.eq(ld_r + 1 < ld.rv)]
        with m.If(ld_r == N - 1):
            m.d.sync += ld_active.eq(0)
    with m.If(ld_adv):
        emit_advance(ld)
    with m.If(ld_timer != 0):
        m.d.sync += ld_timer.eq(ld_timer - 1)
    m.d.sync += ld_go.eq(ld_timer == 2)
    m.d.comb += [arr.w_load.eq(wl_valid), arr.w_row.eq(wl_row)]
    for c in range(N):
        m.d.comb += [arr.w_data[c].eq(Mux(wl_ok, seq.w_data.word_select(c, 8).as_signed(), 0)),
                     arr.w_en[c].eq(wl_en[c])]
    ctx.give(locals(),
             "ld_active ld_adv ld_adv_row ld_go ld_overflow ld_r ld_start ld_timer")
