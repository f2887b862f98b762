"""SETUP and STREAM: one pixel per cycle into the array.

Contract: SETUP (one cycle) loads the chunk's start values from ``cur``'s registered stage;
STREAM issues P pixels in raster order over the pixel block, then idles to max(P, N) cycles.
Per pixel it steps the coordinates, the in-bounds checks (registers: zero padding costs no
compare in front of the memories), the read addresses (activation buffer, or per-row image
addresses in tap mode) and the tag that travels with the pixel to the output stage. The array
sees the pixel ``READ_LATENCY`` cycles after its issue.
"""
from amaranth import Cat, Const, Mux, Signal, signed
from amaranth.lib import data

from ..dsp import reg_copy
from ...contract.schedule import READ_LATENCY, REQ_LATENCY
from .context import C16, SA


def build(m, seq, platform, ctx):
    """The issue state, SETUP's values, the tags, the bounds, the read addresses and the array input."""
    (AI, AO, BRWc, H, HcWc, ICH, N, P, S, W, Wc_m2, Wout, arr, cfg, cur, cur_has_next, dst_base,
     emit_advance, image, ld_adv, ld_adv_row, ld_go, ld_timer, pool, r_ch, r_dkh, r_hmd, r_off,
     r_xhi, r_xlo, rowjump, sbase, src, tconst, wc_one) = ctx.take(
        "AI AO BRWc H HcWc ICH N P S W Wc_m2 Wout arr cfg cur cur_has_next dst_base emit_advance "
        "image ld_adv ld_adv_row ld_go ld_timer pool r_ch r_dkh r_hmd r_off r_xhi r_xlo rowjump "
        "sbase src tconst wc_one")
    since = Signal(C16)  # cycles since the chunk's first issue
    Pn_m1 = Signal(C16)  # pixels in the chunk - 1
    per_m2 = Signal(C16)  # max(P, N) - 2: STREAM length - 2
    # STREAM's last cycle (since == max(P, N) - 1), a register set a cycle ahead (since ==
    # per_m2; 0 from SETUP: max(P, N) - 1 >= 3), so no 16-bit compare sits in front of the
    # transitions out of STREAM (``since`` -> the drain counter's enable is too long for 100 MHz)
    st_last = Signal(name="st_last")
    iss = Signal()  # STREAM still issuing (since < P)
    # its next value, assigned (comb) where iss is set or cleared: the register loads it, and
    # so does a twin, `iss_step`, that enables only the issue steps (x, y, the bounds flags,
    # the read addresses, out_row: a few hundred flip-flops), while iss drives the tags, the
    # read enables and the counters. One flip-flop driving both put two die-wide routes on
    # `iss -> out_row` (up to 1.35 ns past 10 ns on the ECP5-45F)
    iss_d = Signal(name="iss_d")
    m.d.comb += iss_d.eq(iss)
    m.d.sync += iss.eq(iss_d)
    # (on the ECP5 target the twin has no reset: a reset mid-run leaves it a cycle behind
    # iss, stepping registers that SETUP loads again before any use)
    iss_step = reg_copy(m, "iss_step", iss_d, platform)
    x, y = Signal(C16, name="x"), Signal(C16, name="y")
    # x == Wc - 1 as a register, set a step ahead (x == Wc - 2 before x steps, or a one-pixel
    # row): the row's end decides the enables of every stepped register, so no compare of x
    # sits in front of them
    x_end = Signal(name="x_end", reset_less=True)
    yy = Signal(signed(SA), name="yy")  # input coordinates of (kh, kw) (normal) / (0, 0) (tap)
    xx = Signal(signed(SA), name="xx")
    out_row = Signal(32)  # output word of (o-tile, output row)
    macs_px = Signal(range(N * N + 1))
    c_first, c_last, c_newot = Signal(name="c_first"), Signal(name="c_last"), Signal(name="c_newot")
    has_next = Signal()
    # the chunk being streamed (`cur` steps to the next chunk in STREAM's first cycle)
    c_t, c_och, c_cols = Signal(8, name="c_t"), Signal(C16, name="c_och"), Signal(range(N + 1), name="c_cols")
    c_rvm = Signal(N)  # row r < rows valid
    c_xx0 = Signal(signed(SA))  # xx at the start of an output row

    # SETUP's values for `cur`, registered from its state (stage 1, 2, 3 as in It)
    s_yy, s_xx = Signal(signed(SA), reset_less=True, name="s_yy"), Signal(signed(SA), reset_less=True, name="s_xx")
    s_left, s_saddr = Signal(32, reset_less=True, name="s_left"), Signal(32, reset_less=True, name="s_saddr")
    s_outrow = Signal(32, reset_less=True)
    s_pn, s_pn_m1 = Signal(C16, reset_less=True, name="s_pn"), Signal(C16, reset_less=True, name="s_pn_m1")
    s_pn_m2 = Signal(C16, reset_less=True, name="s_pn_m2")
    s_macs = Signal(range(N * N + 1), reset_less=True)
    y0s = Mux(S == 2, cur.y0 << 1, cur.y0)
    m.d.sync += [s_yy.eq(y0s.as_signed() + Mux(image, 0, cur.kh) - P),
                 s_xx.eq(Mux(image, 0, cur.kw).as_signed() - P),
                 s_left.eq(HcWc - cur.y0Wc),  # pixels left in the o-tile (rows left * Wc)
                 s_saddr.eq(Mux(image, cur.y0sW + cur.cbW + tconst, sbase + cur.acc_n)),
                 s_outrow.eq(dst_base + cur.tHWo + cur.y0Wo),
                 s_pn.eq(Mux(BRWc < s_left, BRWc, s_left)),  # rows_b * Wc, rows_b = min(BR, Hc - y0)
                 s_macs.eq(cur.rv * cur.cols),
                 s_pn_m1.eq(s_pn - 1), s_pn_m2.eq(s_pn - 2)]

    # tags travel with the pixel: issue -> array -> accumulate -> requant -> write
    tag_layout = data.StructLayout({
        "first": 1, "cfirst": 1, "clast": 1, "newot": 1, "pix": range(cfg.acc_depth),
        "t": 8, "och": C16, "cols": range(N + 1), "waddr": range(cfg.act_depth),
        "lb": range(cfg.line_depth), "xo": 1, "yo": 1})
    depth = AO + 2 + REQ_LATENCY
    # the valid bits (tv: a pixel is issued) are a shift register of their own and the only
    # part with a reset: the tags' data fields are reset-less, which keeps them off the
    # reset net
    tags = [Signal(tag_layout, name=f"tag{k}", reset_less=True) for k in range(depth)]
    tv = [Signal(name=f"tag{k}_valid") for k in range(depth)]
    tag_in = Signal(tag_layout)
    # issuing (STREAM with pixels left) is iss itself: set only in SETUP, cleared by STREAM's
    # last pixel or a failure, so it is 1 only in STREAM (no state decode in front of the
    # memories' enables)
    issuing = iss
    m.d.sync += [tags[0].eq(tag_in), tv[0].eq(issuing)]
    for k in range(1, depth):
        m.d.sync += [tags[k].eq(tags[k - 1]), tv[k].eq(tv[k - 1])]

    # Bounds: row r's read is in bounds when bx_lo[r] <= xx < bx_hi[r] and by_lo[r] <= yy <
    # by_hi[r]: [0, W) x [0, H) for every row in normal mode, and in tap mode (row r reads
    # input (yy + cb + dkh_r, xx + kw_r)) [-kw_r, W - kw_r) x [-(cb + dkh_r), H - dkh_r - cb).
    # The checks are registers (xok, yok), stepped with xx and yy: in a row xx moves by st
    # (S == 2: 2, else 1), so the next check compares xx against the bounds minus st; at a
    # row's end xx returns to its start (its check saved at SETUP) and yy moves by S. The
    # read enables and row masks are then an AND of registers: no compare between the
    # coordinates and the memories' enables.
    # st: a register (S is the layer's, loaded in FETCH: st holds it from DECODE's second
    # cycle, long before STREAM), so the stride's compare does not sit in front of the
    # N + 2 address adders (`seq.S -> img_addr` missed 10 ns at 38 endpoints with it there)
    st = Signal(2, name="st", reset_less=True)
    m.d.sync += st.eq(Mux(S == 2, 2, 1))
    bx_lo = [Signal(signed(SA), name=f"bx_lo{r}", reset_less=True) for r in range(N)]
    bx_hi = [Signal(signed(SA), name=f"bx_hi{r}", reset_less=True) for r in range(N)]
    bx_lo_s = [Signal(signed(SA), name=f"bx_lo_s{r}", reset_less=True) for r in range(N)]
    bx_hi_s = [Signal(signed(SA), name=f"bx_hi_s{r}", reset_less=True) for r in range(N)]
    for r in range(N):  # layer constants (r_xlo, r_xhi: DECODE cycle 3 + r), two cycles behind
        m.d.sync += [bx_lo[r].eq(Mux(image, r_xlo[r], 0)), bx_hi[r].eq(Mux(image, r_xhi[r], W)),
                     bx_lo_s[r].eq(bx_lo[r] - st), bx_hi_s[r].eq(bx_hi[r] - st)]
    # the chunk's y bounds: stage 1 from `cur`, then (stage 2) minus S, and the checks of
    # SETUP's (s_xx, s_yy)
    s_by_lo = [Signal(signed(SA), name=f"s_by_lo{r}", reset_less=True) for r in range(N)]
    s_by_hi = [Signal(signed(SA), name=f"s_by_hi{r}", reset_less=True) for r in range(N)]
    s_by_lo_s = [Signal(signed(SA), name=f"s_by_lo_s{r}", reset_less=True) for r in range(N)]
    s_by_hi_s = [Signal(signed(SA), name=f"s_by_hi_s{r}", reset_less=True) for r in range(N)]
    s_xok = [Signal(name=f"s_xok{r}", reset_less=True) for r in range(N)]
    s_yok = [Signal(name=f"s_yok{r}", reset_less=True) for r in range(N)]
    for r in range(N):
        m.d.sync += [s_by_lo[r].eq(Mux(image, -(cur.cb + r_dkh[r]), 0)),
                     s_by_hi[r].eq(Mux(image, r_hmd[r] - cur.cb, H)),
                     s_by_lo_s[r].eq(s_by_lo[r] - S), s_by_hi_s[r].eq(s_by_hi[r] - S),
                     s_xok[r].eq((s_xx >= bx_lo[r]) & (s_xx < bx_hi[r])),
                     s_yok[r].eq((s_yy >= s_by_lo[r]) & (s_yy < s_by_hi[r]))]
    # the streamed chunk's: y bounds minus S, the checks, the check at the row's start
    c_by_lo_s = [Signal(signed(SA), name=f"c_by_lo_s{r}", reset_less=True) for r in range(N)]
    c_by_hi_s = [Signal(signed(SA), name=f"c_by_hi_s{r}", reset_less=True) for r in range(N)]
    xok = [Signal(name=f"xok{r}", reset_less=True) for r in range(N)]
    yok = [Signal(name=f"yok{r}", reset_less=True) for r in range(N)]
    x0ok = [Signal(name=f"x0ok{r}", reset_less=True) for r in range(N)]
    inb = Signal()
    rmask = Signal(N)  # rows with a real read this pixel
    # the row mask, the mode and the tap-row channels as they were when the words now in
    # the registers behind the memories were read (READ_LATENCY cycles ago)
    rmask_dl = [Signal(N, name=f"rmask_d{k}") for k in range(READ_LATENCY)]
    m.d.sync += [rmask_dl[0].eq(rmask)] + [rmask_dl[k].eq(rmask_dl[k - 1]) for k in range(1, READ_LATENCY)]
    rmask_d = rmask_dl[-1]
    m.d.comb += inb.eq(xok[0] & yok[0])

    # saddr = src_base + (cb/N)*H*W + yy*W + xx (normal mode) or yy*W + kh_base*W + xx (tap
    # mode), kept by addition in step with yy and xx: the read address is a register. Tap
    # mode row r reads saddr + r_off[r]: a register of its own per row (img_addr), stepped
    # alike (mod 2**bits: the port takes the low bits), from s_ar (stage 2) at SETUP.
    saddr = Signal(32)
    m.d.comb += [seq.src_addr.eq(saddr), seq.src_sel.eq(src)]
    AB = len(seq.img_addr[0])
    ar = [Signal(AB, name=f"ar{r}", reset_less=True) for r in range(N)]
    s_ar = [Signal(AB, name=f"s_ar{r}", reset_less=True) for r in range(N)]
    for r in range(N):
        m.d.sync += s_ar[r].eq(s_saddr + r_off[r])
        m.d.comb += [seq.img_addr[r].eq(ar[r]), rmask[r].eq(c_rvm[r] & xok[r] & yok[r])]
    m.d.comb += [seq.img_re.eq(Mux(issuing & image, rmask, 0)),
                 seq.src_re.eq(issuing & ~image & inb)]

    # array input (READ_LATENCY cycles after issue)
    ch_dl = [[Signal.like(r_ch[r], name=f"ch_d{k}_{r}") for r in range(N)] for k in range(READ_LATENCY)]
    image_dl = [Signal(name=f"image_d{k}") for k in range(READ_LATENCY)]
    for k in range(READ_LATENCY):
        m.d.sync += [ch_dl[k][r].eq(r_ch[r] if k == 0 else ch_dl[k - 1][r]) for r in range(N)]
        m.d.sync += image_dl[k].eq(image if k == 0 else image_dl[k - 1])
    ch_d, image_d = ch_dl[-1], image_dl[-1]
    for r in range(N):
        img_byte = Signal(8, name=f"img_byte{r}")
        if ICH == 1:
            m.d.comb += img_byte.eq(seq.img_data[r])
        else:
            with m.Switch(ch_d[r]):
                for c in range(ICH):
                    with m.Case(c):
                        m.d.comb += img_byte.eq(seq.img_data[r].word_select(c, 8))
        val = Mux(image_d, img_byte, seq.src_data.word_select(r, 8))
        m.d.comb += arr.x_in[r].eq(Mux(rmask_d[r], val.as_signed(), 0))
    m.d.comb += [arr.x_valid.eq(tv[AI]), arr.x_first.eq(tags[AI].first)]

    # `cur` steps in STREAM's first cycle: a strobe registered in SETUP (cleared when SETUP
    # fails), so the state decode is not in front of the iterator's enables (~300 loads)
    cur_adv = Signal()
    m.d.sync += cur_adv.eq(0)
    setup = Signal(name="setup")  # 1 in SETUP (see below)
    with m.If(cur_adv):
        emit_advance(cur)

    # SETUP (one cycle per chunk) is also a register of its own, `setup`, set with the
    # transitions into it (PRELOAD's last row, the end of a STREAM with a chunk to follow) and
    # cleared by a failure. SETUP's loads, and STREAM's issue steps under `issuing` (1 only in
    # STREAM), are here, outside the FSM, so no state decode sits in front of their enables
    # (a state decode there made `seq_state -> out_row` the critical path). They come before the FSM,
    # so a failure's loads win, as they did inside it.
    m.d.sync += [setup.eq(0), since.eq(since + 1), st_last.eq(since == per_m2)]  # read only in STREAM
    with m.If(setup):
        m.d.sync += [since.eq(0), st_last.eq(0), Pn_m1.eq(s_pn_m1),
                     per_m2.eq(Mux(s_pn > N, s_pn_m2, N - 2)),
                     x.eq(0), x_end.eq(wc_one), y.eq(cur.y0), yy.eq(s_yy), xx.eq(s_xx),
                     c_xx0.eq(s_xx), saddr.eq(s_saddr), out_row.eq(s_outrow), macs_px.eq(s_macs),
                     c_first.eq(cur.first), c_last.eq(cur.last), c_newot.eq(cur.first & cur.b0),
                     has_next.eq(cur_has_next), ld_timer.eq(Mux(cur_has_next, N, 0)),
                     ld_go.eq(0), ld_adv.eq(ld_adv_row),  # ld_timer != 1 next cycle (N >= 4)
                     c_t.eq(cur.t), c_och.eq(cur.och), c_cols.eq(cur.cols),
                     c_rvm.eq(Cat(*[Const(r, 8) < cur.rv for r in range(N)]))]
        for r in range(N):
            m.d.sync += [c_by_lo_s[r].eq(s_by_lo_s[r]), c_by_hi_s[r].eq(s_by_hi_s[r]),
                         xok[r].eq(s_xok[r]), x0ok[r].eq(s_xok[r]), yok[r].eq(s_yok[r]),
                         ar[r].eq(s_ar[r])]
        m.d.sync += cur_adv.eq(1)
        m.d.comb += iss_d.eq(s_pn != 0)
    with m.If(issuing):
        m.d.comb += [tag_in.first.eq(since == 0), tag_in.cfirst.eq(c_first),
                     tag_in.clast.eq(c_last), tag_in.newot.eq(c_newot & (since == 0)),
                     tag_in.pix.eq(since), tag_in.t.eq(c_t), tag_in.och.eq(c_och),
                     tag_in.cols.eq(c_cols), tag_in.waddr.eq(out_row + Mux(pool, x >> 1, x)),
                     tag_in.lb.eq(x >> 1), tag_in.xo.eq(x[0]), tag_in.yo.eq(y[0])]
        with m.If(since == Pn_m1):
            m.d.comb += iss_d.eq(0)
    with m.If(iss_step):  # == issuing
        with m.If(~x_end):  # x != Wc - 1
            m.d.sync += [x.eq(x + 1), x_end.eq(x == Wc_m2), xx.eq(xx + st), saddr.eq(saddr + st)]
            for r in range(N):
                m.d.sync += [ar[r].eq(ar[r] + st), xok[r].eq((xx >= bx_lo_s[r]) & (xx < bx_hi_s[r]))]
        with m.Else():
            m.d.sync += [x.eq(0), x_end.eq(wc_one), xx.eq(c_xx0), y.eq(y + 1),
                         yy.eq(yy + S), saddr.eq(saddr + rowjump)]
            for r in range(N):
                m.d.sync += [ar[r].eq(ar[r] + rowjump), xok[r].eq(x0ok[r]),
                             yok[r].eq((yy >= c_by_lo_s[r]) & (yy < c_by_hi_s[r]))]
            with m.If(~pool | y[0]):
                m.d.sync += out_row.eq(out_row + Wout)
    ctx.give(locals(),
             "cur_adv has_next iss_d issuing macs_px setup st_last tags tv")
