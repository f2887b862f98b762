"""The performance counters' increments (``Sequencer.inc``), one field per counter.

Contract: each increment is registered, landing one cycle after its event (two for IMG_RD), so
the counters' values after DONE equal ``hw.contract.schedule``'s prediction exactly.
"""
from amaranth import Const, Mux, Signal

from ...contract.schedule import BUF_A, BUF_B


def build(m, seq, platform, ctx):
    """Register this cycle's increments."""
    (N, acc_rd, acc_wr, busy, dst, issuing, line_rd, line_wr, macs_px, src) = ctx.take(
        "N acc_rd acc_wr busy dst issuing line_rd line_wr macs_px src")
    # registered: an increment lands in its counter one cycle after the event (two for IMG_RD,
    # counted from the registered read enables); the counters' final values are the same,
    # and the host reads them after STATUS.DONE
    img_re_d = Signal(N)
    m.d.sync += img_re_d.eq(seq.img_re)
    inc = seq.inc
    m.d.sync += [
        inc.BUSY_CYCLES.eq(busy),
        inc.MACS.eq(Mux(issuing, macs_px, 0)),
        inc.GATED_PE_CYCLES.eq(Mux(busy, N * N - Mux(issuing, macs_px, 0), 0)),
        inc.STALL_CYCLES.eq(busy & ~issuing),
        inc.IMG_RD.eq(sum((img_re_d[r] for r in range(N)), Const(0, 8))),
        inc.ACTA_RD.eq(seq.src_re & (src == BUF_A)), inc.ACTB_RD.eq(seq.src_re & (src == BUF_B)),
        inc.ACTA_WR.eq(seq.dst_we & (dst == BUF_A)), inc.ACTB_WR.eq(seq.dst_we & (dst == BUF_B)),
        inc.WGT_RD.eq(seq.w_re), inc.PRM_RD.eq(seq.p_re), inc.ACC_RD.eq(acc_rd.en), inc.ACC_WR.eq(acc_wr.en),
        inc.LINE_RD.eq(line_rd.en), inc.LINE_WR.eq(line_wr.en),
        inc.LOGIT_WR.eq(sum((seq.lg_we[c] for c in range(N)), Const(0, 8))),
    ]
