"""The output stage: accumulate, requantize, ReLU, saturate, pool and write.

Contract: a pixel's sums leave the array ``ARRAY_LATENCY(N)`` cycles after it entered; the first
chunk of an (o-tile, block) adds the bias, later chunks the accumulator memory's word; the last
chunk feeds the requantizer (conv: int8 out, 2x2 pool over x pairs in the stream and y pairs
through the line buffer, written to the destination buffer ``drain_cycles(N)`` after the issue at
most) or writes the raw int32 sums to the logits (classifier). Columns past the o-tile's last
are zero (conv) or not written (classifier).
"""
from amaranth import Cat, Const, Mux, Signal, signed

from ...contract.schedule import KIND_CLASSIFIER, KIND_CONV, REQ_LATENCY


def build(m, seq, platform, ctx):
    """The parameter read, the accumulators, the requantizer's inputs, the pool, the output write."""
    (AO, N, acc_rd, acc_wr, arr, dst, kind, line_rd, line_wr, p_base, pool, relu, req, tags, tv) = ctx.take(
        "AO N acc_rd acc_wr arr dst kind line_rd line_wr p_base pool relu req tags tv")
    # tA: the array's sums plus the bias (first chunk) or the accumulator read (others); tB,
    # one cycle later: that sum registered, written back (not the last chunk), fed to the
    # requantizer (conv) or to the logits (classifier). A pixel's next read of the same
    # accumulator comes a chunk later (N + 1 cycles at least), long after its write.
    pre4, pre2, pre, tA, tB = tags[AO - 4], tags[AO - 2], tags[AO - 1], tags[AO], tags[AO + 1]
    pre4_v, pre2_v, pre_v, tA_v, tB_v = tv[AO - 4], tv[AO - 2], tv[AO - 1], tv[AO], tv[AO + 1]
    # An o-tile's parameter word is read at its first pixel's pre3 stage (the address and
    # read enable registers, p_word and p_rd, loaded at pre4: the one computed read address
    # does not go through an adder into the block RAM), so its register
    # behind the memory (READ_LATENCY) holds it from pre to tA (o-tile starts are N + 1
    # cycles apart at least): its biases are latched at pre, for tA's sums; M and S at tA,
    # for tB's requantizer. So no 512-bit register with a multiplexer in front of the
    # accumulate adders.
    # The accumulator is read at pre2 too, and its word registered (acc_prev) at pre: the
    # block RAM's slow clock-to-output (5.8 ns on an ECP5-6) then goes straight into a
    # flip-flop, not through the accumulate adders. The pixel's previous write (tB of the
    # chunk before, N + 1 cycles earlier at least) has landed by then.
    p_word, p_rd = Signal(32, name="p_word", reset_less=True), Signal(name="p_rd")
    m.d.sync += [p_word.eq(p_base + pre4.t), p_rd.eq(pre4_v & pre4.newot)]
    m.d.comb += [acc_rd.addr.eq(pre2.pix), acc_rd.en.eq(pre2_v & ~pre2.cfirst),
                 seq.p_addr.eq(p_word), seq.p_re.eq(p_rd)]
    acc_prev = [Signal(signed(32), name=f"acc_prev{c}", reset_less=True) for c in range(N)]
    m.d.sync += [acc_prev[c].eq(acc_rd.data.word_select(c, 32).as_signed()) for c in range(N)]
    bias = [Signal(signed(32), name=f"bias{c}", reset_less=True) for c in range(N)]  # tA's o-tile
    req_m = [Signal(16, name=f"req_m{c}", reset_less=True) for c in range(N)]  # tB's o-tile
    req_s = [Signal(6, name=f"req_s{c}", reset_less=True) for c in range(N)]
    for c in range(N):
        lane = seq.p_data.word_select(c, 64)
        with m.If(pre_v & pre.newot):
            m.d.sync += bias[c].eq(lane[0:32])
        with m.If(tA_v & tA.newot):
            m.d.sync += [req_m[c].eq(lane[32:48]), req_s[c].eq(lane[48:54])]
    # acc_new loads every cycle (no enable fanning out to its 32N flip-flops): it is used
    # only under tB's valid bit (the accumulator write, the requantizer, the logits)
    acc_new = [Signal(signed(32), name=f"acc_new{c}", reset_less=True) for c in range(N)]
    for c in range(N):
        m.d.sync += acc_new[c].eq(arr.p_out[c] + Mux(tA.cfirst, bias[c], acc_prev[c]))
        m.d.comb += [req.acc[c].eq(acc_new[c]), req.m[c].eq(req_m[c]), req.s[c].eq(req_s[c]),
                     seq.lg_data[c].eq(acc_new[c])]
    # the o-tile's valid columns: the logits' write enables, and the columns past the last
    # are zeroed in the requantizer's last stage, so its output register is the masked value
    # (no mask between it and the pool's max)
    col_ok = Cat(*[Const(c, 8) < tB.cols for c in range(N)])
    m.d.comb += [acc_wr.addr.eq(tB.pix), acc_wr.data.eq(Cat(*acc_new)), acc_wr.en.eq(tB_v & ~tB.clast),
                 req.relu.eq(relu), req.valid.eq(tB_v & tB.clast & (kind == KIND_CONV)),
                 req.zero.eq(~col_ok)]
    cls_write = tB_v & tB.clast & (kind == KIND_CLASSIFIER)
    m.d.comb += [seq.lg_base.eq(tB.och), seq.lg_we.eq(Mux(cls_write, col_ok, 0))]

    tW, tW_v = tags[AO + 1 + REQ_LATENCY], tv[AO + 1 + REQ_LATENCY]
    yv = [req.y[c] for c in range(N)]  # columns past the o-tile's last are 0 (req.zero)
    wr_conv = tW_v & tW.clast & (kind == KIND_CONV)
    hreg = [Signal(signed(8), name=f"hreg{c}", reset_less=True) for c in range(N)]
    hmax = [Mux(hreg[c] > yv[c], hreg[c], yv[c]) for c in range(N)]
    line_prev = [line_rd.data.word_select(c, 8).as_signed() for c in range(N)]
    with m.If(wr_conv & ~tW.xo):
        m.d.sync += [hreg[c].eq(yv[c]) for c in range(N)]
    # The line buffer's write is registered (its address, word and enable a cycle after tW),
    # so the x max does not route into the block RAM's data inputs in the same cycle. Row
    # y+1 reads an x pair's word Wc - 1 pixels after row y's odd pixel wrote it, the same
    # cycle when Wc = 2: the read port is transparent to the write port for that case.
    lw_addr = Signal.like(tW.lb, name="lw_addr", reset_less=True)
    lw_data = Signal(8 * N, name="lw_data", reset_less=True)
    lw_en = Signal(name="lw_en")
    m.d.sync += [lw_addr.eq(tW.lb), lw_data.eq(Cat(*hmax)), lw_en.eq(wr_conv & pool & tW.xo & ~tW.yo)]
    m.d.comb += [line_rd.addr.eq(tW.lb), line_rd.en.eq(wr_conv & pool & ~tW.xo & tW.yo),
                 line_wr.addr.eq(lw_addr), line_wr.data.eq(lw_data), line_wr.en.eq(lw_en)]
    # The output write one cycle later (a register stage, so the x max and the y max against
    # the line buffer are in different cycles): out = hmax (pool) or the requantized value.
    w_addr, w_we = Signal.like(tW.waddr, name="w_addr"), Signal(name="w_we")
    w_val = [Signal(signed(8), name=f"w_val{c}", reset_less=True) for c in range(N)]
    w_line = [Signal(signed(8), name=f"w_line{c}", reset_less=True) for c in range(N)]
    m.d.sync += [w_addr.eq(tW.waddr), w_we.eq(wr_conv & Mux(pool, tW.xo & tW.yo, 1))]
    m.d.sync += [w_val[c].eq(Mux(pool, hmax[c], yv[c])) for c in range(N)]
    m.d.sync += [w_line[c].eq(line_prev[c]) for c in range(N)]
    pooled = [Mux(w_line[c] > w_val[c], w_line[c], w_val[c]) for c in range(N)]
    # The output word, its address and write enable in registers a cycle later still, so the
    # y max's compare and select do not route across the die into the activation memories'
    # data inputs in the same cycle (a cycle more per layer: drain_cycles).
    o_addr, o_we = Signal.like(w_addr, name="o_addr", reset_less=True), Signal(name="o_we")
    o_data = Signal(8 * N, name="o_data", reset_less=True)
    m.d.sync += [o_addr.eq(w_addr), o_we.eq(w_we),
                 o_data.eq(Mux(pool, Cat(*pooled), Cat(*w_val)))]  # pool: the layer's, steady
    m.d.comb += [seq.dst_addr.eq(o_addr), seq.dst_sel.eq(dst), seq.dst_we.eq(o_we),
                 seq.dst_we_next.eq(w_we), seq.dst_data.eq(o_data)]
