"""The chunk iterators. ``cur`` walks the chunks SETUP and STREAM issue; ``ld`` walks one chunk ahead
for the weight loader. Each steps through (o-tile, pixel block, input slice) in the order of
``hw.contract.schedule.plan_layer``, and keeps every product it needs by addition.

Contract: the state steps only through ``emit_advance`` (and ``init`` in DECODE); every value
derived from the state is registered in up to three stages and read no sooner than four cycles
after a step (so N >= 4). ``tests/test_hw_accel.py`` checks the chunk sequence cycle for cycle.
"""
from amaranth import Cat, Const, Mux, Signal, signed

from .context import C16, min_


def build(m, seq, platform, ctx):
    """The o-tile group tables, the ``It`` iterator class, ``emit_advance`` and the two iterators."""
    (BR, BRWc, BRWo, BRsW, G, GM, HWo, Hc, K, KK, KR, KRKC, KRW, N, cout, dKH, dKW, ext_c, image,
     lastKC, n_in, n_out, nq_tap, thr_out, tiles_notri, tiles_t, tri) = ctx.take(
        "BR BRWc BRWo BRsW G GM HWo Hc K KK KR KRKC KRW N cout dKH dKW ext_c image lastKC n_in "
        "n_out nq_tap thr_out tiles_notri tiles_t tri")
    # o-tile tables: the o-tile whose outputs end below ``lim`` (exclusive) has its last
    # channel in the group g with thr_out[g] < lim <= thr_out[g+1]; thr_out[g] < n_out (and
    # < cout) are decode-time constants, so the select is one compare per group and a
    # one-hot multiplexer (the thresholds rise with g: the compares are a thermometer code,
    # and its last 1 is the group; the registers hold that one-hot code, so the multiplexer
    # after them has no edge detect in front)
    below_nout = [(g < G) & (thr_out[g] < n_out) for g in range(GM)]
    lt_nout = [Signal(name=f"lt_nout{g}") for g in range(GM)]
    lt_cout = [Signal(name=f"lt_cout{g}") for g in range(GM)]
    m.d.sync += [lt_nout[g].eq(below_nout[g]) for g in range(GM)]
    m.d.sync += [lt_cout[g].eq((g < G) & (thr_out[g] < cout)) for g in range(GM)]

    def one_hot(ge):
        """The thermometer code 1, ge[0], ge[1], ... (groups 0, 1, ..., GM - 1) as a
        one-hot code of its last 1."""
        t = Cat(Const(1, 1), *ge)
        return Cat(*[t[g] & ~t[g + 1] if g + 1 < GM else t[g] for g in range(GM)])

    def ge_code(lim, lt_n, name):
        """The one-hot group code (a register a cycle behind ``lim``)."""
        sel = Signal(GM, name=name)
        m.d.sync += sel.eq(one_hot([lt_n[g] & (thr_out[g] < lim) for g in range(1, GM)]))
        return sel

    def group_select(sel, table):
        out = Const(0, C16)
        for g in range(GM):
            out = out | Mux(sel[g], table[g], 0)
        return out

    def ext_of(ge_n):
        """The input extent of the o-tile of group code ge_n."""
        return Mux(tri, group_select(ge_n, ext_c), n_in)

    def tiles_of(ge_c):
        """The full-width input tiles of the o-tile of group code ge_c."""
        return Mux(tri, group_select(ge_c, tiles_t), tiles_notri)

    # the first o-tile's codes (lim = N), registered continuously: ge0_c valid in DECODE's
    # init cycle; ge0_n a cycle sooner, straight from the thresholds (not through lt_nout), so
    # that the first o-tile's input extent is a register of its own there (ext0), not a
    # group select in front of the iterators' ``rem`` subtracters (a critical path on the ECP5)
    ge0_n, ge0_c = Signal(GM, name="ge0_n"), ge_code(Const(N, C16), lt_cout, "ge0_c")
    m.d.sync += ge0_n.eq(one_hot([below_nout[g] & (thr_out[g] < N) for g in range(1, GM)]))
    ext0 = Signal(C16, name="ext0", reset_less=True)
    m.d.sync += ext0.eq(ext_of(ge0_n))

    class It:
        """A chunk iterator. The state registers step at ``advance``; everything derived from
        them is registered: stage 1 (valid 2 cycles after a step) from the state, stage k + 1
        (valid k + 2 cycles after) from stage k. The sequencer never reads a derived value
        sooner: with N >= 4 a chunk lasts at least N + 1 cycles (stage 3 is read at the next
        step, stages 1-3 at SETUP), the weight loader reads ``rv`` (stage 1) 2 cycles after
        its step at the earliest, and the decoder initialises both iterators 3 cycles before
        PRELOAD."""

        def __init__(self, name):
            self.och = Signal(C16, name=f"{name}_och")
            self.t = Signal(8, name=f"{name}_t")
            self.cols = Signal(range(N + 1), name=f"{name}_cols")
            self.ext = Signal(C16, name=f"{name}_ext")
            self.ntiles = Signal(C16, name=f"{name}_ntiles")  # input tiles of the full o-tile
            self.nqf = Signal(C16, name=f"{name}_nqf")  # its weight chunks: a register behind ntiles
            self.y0 = Signal(C16, name=f"{name}_y0")
            self.b0 = Signal(name=f"{name}_b0")  # block 0 of its o-tile
            # products kept by addition as the chunk steps (SETUP multiplies nothing):
            # y0*S*W, cb*W (tap mode), t*Hout*Wout, y0'*Wout (y0' = y0/2 under pooling)
            # and y0*Wc
            self.y0sW = Signal(32, name=f"{name}_y0sW")
            self.cbW = Signal(32, name=f"{name}_cbW")
            self.tHWo = Signal(32, name=f"{name}_tHWo")
            self.y0Wo = Signal(32, name=f"{name}_y0Wo")
            self.y0Wc = Signal(32, name=f"{name}_y0Wc")
            # normal mode: the input word offset of the chunk's first pixel before padding and
            # bases, (cb/N)*H*W + y0*S*W + kh*W + kw
            self.acc_n = Signal(32, name=f"{name}_acc_n")
            self.cb = Signal(C16, name=f"{name}_cb")
            # what is left past cb, stepped with it: ext - cb (normal mode), K - cb (tap
            # mode); the stage-1 checks then compare a register, with no adder before them
            self.rem = Signal(C16, name=f"{name}_rem")
            self.remk = Signal(C16, name=f"{name}_remk")
            self.rem_y = Signal(C16, name=f"{name}_rem_y")  # Hc - y0
            # n_out - och, signed: past the last o-tile it goes negative, as och + N >= n_out stays true
            self.rem_o = Signal(signed(C16 + 2), name=f"{name}_rem_o")
            self.kh = Signal(8, name=f"{name}_kh")
            self.kw = Signal(8, name=f"{name}_kw")
            self.wchunk = Signal(C16, name=f"{name}_wchunk")
            self.base = Signal(C16, name=f"{name}_base")
            self.end = Signal(name=f"{name}_end")
            # stage 1
            self.rv = Signal(range(N + 1), name=f"{name}_rv")  # rows valid
            self.last = Signal(name=f"{name}_last")  # last chunk of (o-tile, block)
            self.first = Signal(name=f"{name}_first")
            self.kw_more = Signal(name=f"{name}_kw_more")  # kw + 1 < K
            self.kh_more = Signal(name=f"{name}_kh_more")  # kh + 1 < K
            self.more_blocks = Signal(name=f"{name}_more_blocks")  # y0 + BR < Hc
            self.och2 = Signal(C16, name=f"{name}_och2")  # next o-tile
            self.lim2 = Signal(C16 + 1, name=f"{name}_lim2")  # its end: och + 2N
            self.end2 = Signal(name=f"{name}_end2")  # no next o-tile
            # stage 1: the next o-tile's columns; stage 2: its group codes; stage 3: its tables
            self.cols2 = Signal(range(N + 1), name=f"{name}_cols2")
            self.ext2 = Signal(C16, name=f"{name}_ext2")
            self.tiles2 = Signal(C16, name=f"{name}_tiles2")
            m.d.sync += [
                # cb + KR >= K and cb + N >= ext, ext - cb
                self.rv.eq(Mux(image, Mux(self.remk <= KR, lastKC, KRKC), min_(N, self.rem))),
                self.last.eq(Mux(image, self.remk <= KR,
                                 (self.kw == K - 1) & (self.kh == K - 1) & (self.rem <= N))),
                self.first.eq((self.cb == 0) & (self.kh == 0) & (self.kw == 0)),
                self.kw_more.eq(self.kw + 1 < K), self.kh_more.eq(self.kh + 1 < K),
                self.more_blocks.eq(self.rem_y > BR),  # y0 + BR < Hc
                self.och2.eq(self.och + N), self.lim2.eq(self.och + 2 * N),
                self.end2.eq(self.rem_o <= N),  # och + N >= n_out
            ]
            # min(N, n_out - och2) from rem_o (= n_out - och): a compare with a constant and
            # a subtract of log2(N) + 1 bits, where n_out - och2 would put a 16-bit subtract
            # in front of the compare (a 23-cell critical path on the ECP5)
            m.d.sync += self.cols2.eq(Mux(self.rem_o >= 2 * N, N, self.rem_o - N))
            m.d.sync += [self.ext2.eq(ext_of(ge_code(self.lim2, lt_nout, f"{name}_ge_n"))),
                         self.tiles2.eq(tiles_of(ge_code(self.lim2, lt_cout, f"{name}_ge_c")))]

        def init(self):
            cols = min_(N, n_out)
            ext, tiles = ext0, tiles_of(ge0_c)
            return [self.och.eq(0), self.t.eq(0), self.cols.eq(cols), self.ext.eq(ext),
                    self.ntiles.eq(tiles), self.y0.eq(0), self.rem_y.eq(Hc), self.rem_o.eq(n_out), self.b0.eq(1),
                    self.cb.eq(0), self.rem.eq(ext), self.remk.eq(K), self.kh.eq(0), self.kw.eq(0),
                    self.y0sW.eq(0), self.cbW.eq(0), self.tHWo.eq(0),
                    self.y0Wo.eq(0), self.y0Wc.eq(0), self.acc_n.eq(0),
                    self.wchunk.eq(0), self.base.eq(0), self.end.eq(0)]

    def emit_advance(it):
        """Statements that step ``it`` to the next chunk."""
        with m.If(~it.last):
            m.d.sync += it.wchunk.eq(it.wchunk + 1)
            with m.If(image):
                m.d.sync += [it.cb.eq(it.cb + KR), it.remk.eq(it.remk - KR), it.cbW.eq(it.cbW + KRW)]
            with m.Elif(it.kw_more):
                m.d.sync += [it.kw.eq(it.kw + 1), it.acc_n.eq(it.acc_n + 1)]
            with m.Elif(it.kh_more):
                m.d.sync += [it.kw.eq(0), it.kh.eq(it.kh + 1), it.acc_n.eq(it.acc_n + dKW)]
            with m.Else():
                m.d.sync += [it.kw.eq(0), it.kh.eq(0), it.cb.eq(it.cb + N), it.rem.eq(it.rem - N),
                             it.acc_n.eq(it.acc_n + dKH)]
        with m.Else():
            m.d.sync += [it.cb.eq(0), it.remk.eq(K), it.kh.eq(0), it.kw.eq(0), it.cbW.eq(0)]
            with m.If(it.more_blocks):
                m.d.sync += [it.rem.eq(it.ext), it.y0.eq(it.y0 + BR), it.rem_y.eq(it.rem_y - BR),
                             it.b0.eq(0), it.wchunk.eq(it.base),
                             it.y0sW.eq(it.y0sW + BRsW), it.y0Wo.eq(it.y0Wo + BRWo), it.y0Wc.eq(it.y0Wc + BRWc),
                             it.acc_n.eq(it.y0sW + BRsW)]
            with m.Else():
                m.d.sync += [it.y0.eq(0), it.rem_y.eq(Hc), it.rem_o.eq(it.rem_o - N), it.b0.eq(1),
                             it.y0sW.eq(0), it.y0Wo.eq(0), it.y0Wc.eq(0),
                             it.acc_n.eq(0),
                             it.tHWo.eq(it.tHWo + HWo),
                             it.och.eq(it.och2), it.t.eq(it.t + 1), it.cols.eq(it.cols2),
                             it.ext.eq(it.ext2), it.rem.eq(it.ext2), it.ntiles.eq(it.tiles2),
                             it.base.eq(it.base + it.nqf), it.wchunk.eq(it.base + it.nqf),
                             it.end.eq(it.end2)]

    cur, ld = It("cur"), It("ld")
    # weight chunks of the current full o-tile, one cycle behind ntiles (it is read only at the
    # next o-tile step, at least two cycles later)
    for it in (cur, ld):
        m.d.sync += it.nqf.eq(Mux(image, nq_tap, it.ntiles * KK))
    # does `cur` have a successor? (same conditions as emit_advance, without stepping)
    cur_has_next = Signal()
    m.d.comb += cur_has_next.eq(~cur.last | cur.more_blocks | ~cur.end2)
    ctx.give(locals(),
             "cur cur_has_next emit_advance ld")
