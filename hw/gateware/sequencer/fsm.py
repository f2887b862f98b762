"""The sequencer's state machine: IDLE, FETCH0/FETCH, DECODE, PRELOAD, SETUP, STREAM, DRAIN.

Contract (``hw.contract.schedule``): START runs descriptors FIRST_LAYER .. +NUM_LAYERS-1; FETCH
takes ``FETCH_CYCLES`` and skips a classifier head whose SELECT_K is not the active input
groups; DECODE ``DECODE_CYCLES``; PRELOAD N; per chunk SETUP 1 and STREAM max(P, N); DRAIN
``drain_cycles(N)``. LAYER_CYCLES is written at each layer's end. A DECODE verdict, a weight
overflow or ABORT ends the run with its error code (``fail``): every strobe and valid bit
cleared, so the sequencer is idle the next cycle and never hangs.
"""
from amaranth import Signal

from ...contract.regmap import Error
from ...contract.schedule import DECODE_CYCLES, FETCH_CYCLES, KIND_CLASSIFIER, KIND_CONV, SRC_IMAGE, drain_cycles


def build(m, seq, platform, ctx):
    """The FSM, with ``fail`` and ``guard``: the transitions only; the work is in the other parts."""
    (G, H, K, N, P, S, W, cfg, cin, code, cout, cur_adv, dcode, desc, dfail, done, dsel, dst,
     dst_base, err, gi, gi_now, go, go_now, has_next, image, iss_d, j, j_end, kind, ld_active,
     ld_adv, ld_go, ld_overflow, ld_r, ld_start, ld_timer, p_base, pk1, pk2, pool, producer, relu,
     selk, setup, src, src_base, st_last, tr_step, tri, tv, w_base, windows) = ctx.take(
        "G H K N P S W cfg cin code cout cur_adv dcode desc dfail done dsel dst dst_base err gi "
        "gi_now go go_now has_next image iss_d j j_end kind ld_active ld_adv ld_go ld_overflow "
        "ld_r ld_start ld_timer p_base pk1 pk2 pool producer relu selk setup src src_base st_last "
        "tr_step tri tv w_base windows")
    drain = Signal(range(drain_cycles(N) + 1))
    lcnt = Signal(32)
    # busy (every state but IDLE) is a register of its own, set and cleared with the
    # transitions (a state decode would sit in front of the memories' address multiplexers):
    # it rises leaving IDLE and falls entering it
    busy = Signal()
    m.d.comb += seq.busy.eq(busy)
    m.d.comb += [seq.lc_idx.eq(j)]

    def fail(code_value):
        m.d.sync += [err.eq(1), done.eq(1), code.eq(code_value), ld_active.eq(0), ld_timer.eq(0), ld_go.eq(0),
                     cur_adv.eq(0), ld_adv.eq(0), busy.eq(0), setup.eq(0), dsel.eq(0), tr_step.eq(0)]
        m.d.comb += iss_d.eq(0)
        m.d.sync += [s_.eq(0) for pair in windows.values() for s_ in pair]
        m.d.sync += [v.eq(0) for v in tv]
        m.next = "IDLE"

    def guard():
        """Errors found while running and ABORT win over the state's own transitions."""
        with m.If(ld_overflow):
            fail(Error.BAD_SHAPE)
        with m.If(seq.abort):
            fail(Error.ABORTED)

    with m.FSM(name="seq"):
        with m.State("IDLE"):
            with m.If(seq.start):
                m.d.sync += [done.eq(0), err.eq(0), code.eq(0), producer.eq(0), j.eq(seq.first_layer),
                             j_end.eq(seq.first_layer + seq.num_layers)]
                with m.If((seq.num_layers == 0) | (seq.first_layer + seq.num_layers > cfg.n_desc)):
                    m.d.sync += [err.eq(1), done.eq(1), code.eq(Error.BAD_DESCRIPTOR)]
                with m.Else():
                    m.d.sync += busy.eq(1)
                    m.next = "FETCH0"
        with m.State("FETCH0"):  # j's row and channel counts are read into registers
            m.next = "FETCH"
            guard()
        with m.State("FETCH"):
            m.d.sync += [kind.eq(desc.kind), src.eq(desc.src), dst.eq(desc.dst),
                         image.eq(desc.src == SRC_IMAGE),
                         relu.eq(desc.relu), pool.eq(desc.pool), tri.eq(desc.triangular),
                         selk.eq(desc.select_k), cin.eq(desc.cin), cout.eq(desc.cout),
                         H.eq(desc.h), W.eq(desc.w), K.eq(desc.kernel),
                         S.eq(desc.stride), P.eq(desc.pad), G.eq(desc.groups),
                         w_base.eq(desc.w_base), p_base.eq(desc.p_base), src_base.eq(desc.src_base),
                         dst_base.eq(desc.dst_base), gi.eq(gi_now), go.eq(go_now), lcnt.eq(FETCH_CYCLES),
                         pk1.eq(2 * desc.pad - desc.kernel + 1),
                         pk2.eq(2 * desc.pad - desc.kernel + 2)]
            skip = (desc.kind == KIND_CLASSIFIER) & (desc.select_k != 0) & (desc.select_k != gi_now)
            with m.If(skip):
                m.d.comb += [seq.lc_we.eq(1), seq.lc_val.eq(FETCH_CYCLES)]
                m.d.sync += j.eq(j + 1)
                with m.If(j + 1 == j_end):
                    m.d.sync += [done.eq(1), busy.eq(0)]
                    m.next = "IDLE"
                with m.Else():
                    m.next = "FETCH0"
            with m.Else():
                m.d.sync += dsel.eq(1)
                m.next = "DECODE"
            guard()
        with m.State("DECODE"):  # its work is outside the FSM, under dsel (above)
            m.d.sync += lcnt.eq(lcnt + 1)
            with m.If(dsel[DECODE_CYCLES - 1]):
                with m.If(dfail):
                    fail(dcode)
                with m.Else():
                    m.d.sync += ld_start()
                    m.next = "PRELOAD"
            guard()
        with m.State("PRELOAD"):
            m.d.sync += lcnt.eq(lcnt + 1)
            with m.If(ld_r == N - 1):
                m.d.sync += setup.eq(1)
                m.next = "SETUP"
            guard()
        with m.State("SETUP"):  # its loads are outside the FSM, under `setup`
            m.d.sync += lcnt.eq(lcnt + 1)
            m.next = "STREAM"
            guard()
        with m.State("STREAM"):  # its issue steps are outside the FSM, under `issuing`
            m.d.sync += lcnt.eq(lcnt + 1)
            with m.If(st_last):  # since == max(P, N) - 1
                with m.If(has_next):
                    m.d.sync += setup.eq(1)
                    m.next = "SETUP"
                with m.Else():
                    m.d.sync += drain.eq(drain_cycles(N) - 1)
                    m.next = "DRAIN"
            guard()
        with m.State("DRAIN"):
            m.d.sync += [drain.eq(drain - 1), lcnt.eq(lcnt + 1)]
            with m.If(drain == 0):
                m.d.comb += [seq.lc_we.eq(1), seq.lc_val.eq(lcnt + 1)]
                m.d.sync += j.eq(j + 1)
                with m.If(kind == KIND_CONV):
                    m.d.sync += producer.eq(go)
                with m.If(j + 1 == j_end):
                    m.d.sync += [done.eq(1), busy.eq(0)]
                    m.next = "IDLE"
                with m.Else():
                    m.next = "FETCH0"
            guard()
    ctx.give(locals(),
             "busy")
