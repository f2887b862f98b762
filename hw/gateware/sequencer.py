"""The layer sequencer: runs descriptors on the systolic array, one pixel per cycle.

It is the RTL of ``hw/contract/schedule.py`` (the executable definition of its timeline and counters) and
the layouts of ``docs/design.md``; ``tests/test_hw_accel.py`` checks both cycle for cycle.

Per descriptor: FETCH (``FETCH_CYCLES`` = 2: the descriptor table's registered read, then the
latch; skips a classifier head whose SELECT_K is not the active input group count), DECODE
(``DECODE_CYCLES``: three 16-step dividers and the checks), PRELOAD (N cycles of weight rows),
then per chunk SETUP (1) + STREAM (max(P, N): P pixels issued, the next chunk's weights loading
meanwhile), then DRAIN (``drain_cycles(N)``).

Pipeline of one pixel issued at cycle t (AL = ``ARRAY_LATENCY(N)`` = 2N + 2): t read activations;
t+1 their words registered behind the memories (``READ_LATENCY`` = 2); t+2 into the array;
t+2+AL accumulate (+ bias on the first chunk, the accumulator memory's read
otherwise); t+3+AL that sum registered: written back, or on the last chunk fed to the
requantizer or written to the logits; t+3+AL+REQ_LATENCY ReLU/saturated int8 out (the columns
past the o-tile's last zeroed in the requantizer) and the 2x2 pool's x max (x pairs in the
stream); one cycle later the line buffer's write of the x max and its y max against the line
buffer; one more the write of the output word (from registers). Counter increments are registered: each lands
one cycle after its event.

Timing structure (for FPGA clock rates): DECODE gives every product and check a cycle of its
own; the chunk iterators register everything derived from their state (see ``It``); SETUP only
copies registers; STREAM keeps its read addresses and bounds in registers stepped by addition.
The FSM holds the transitions: DECODE's work (under ``dsel``, its cycle one-hot), SETUP's loads
(under ``setup``) and STREAM's issue steps (under ``issuing``) are outside it, each under a
register set with the transitions, so no state decode sits in front of their enables.
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .array import SystolicArray
from .dsp import reg_copy
from ..contract.params import check_sequencer_size
from .postproc import Requant
from ..contract.regmap import Error, descriptor_layout, register_layout, regmap
from ..contract.schedule import (ARRAY_LATENCY, BUF_A, BUF_B, DECODE_CYCLES, DST_LOGITS, FETCH_CYCLES, KIND_CLASSIFIER, KIND_CONV,
                       READ_LATENCY, REQ_LATENCY, SRC_IMAGE, drain_cycles)

__all__ = ["Sequencer"]

C16 = 16  # width of channel counts, sizes and word addresses inside the sequencer
SA = 24  # signed width of address arithmetic (padding makes intermediate values negative)


def _min(a, b):
    return Mux(a < b, a, b)


class _Divider:
    """16-step restoring divider: ``start`` loads, then 16 ``step`` cycles leave q and r."""

    def __init__(self, m, name):
        self.num = Signal(C16, name=f"{name}_num")
        self.den = Signal(C16, name=f"{name}_den")
        self.q = Signal(C16, name=f"{name}_q")
        self.r = Signal(C16 + 1, name=f"{name}_r")
        self._m = m

    def start(self, num, den):
        m = self._m
        m.d.sync += [self.num.eq(num), self.den.eq(den), self.q.eq(0), self.r.eq(0)]

    def step(self):
        """One quotient bit, most significant first (the numerator shifts out of its top)."""
        m = self._m
        shifted = Cat(self.num[C16 - 1], self.r[:C16])
        ge = shifted >= self.den
        m.d.sync += [self.r.eq(Mux(ge, shifted - self.den, shifted)), self.num.eq(self.num << 1),
                     self.q.eq(Cat(ge, self.q[:C16 - 1]))]


class Sequencer(wiring.Component):
    """Layer sequencer with the array, requantizer, accumulator and line-buffer memories.

    Parameters
    ----------
    cfg : hw.contract.params.ArrayConfig

    Members
    -------
    start, abort : In(1)
        One-cycle pulses from CTRL.
    first_layer, num_layers, width : In(8)
        FIRST_LAYER, NUM_LAYERS and WIDTH registers.
    chan : In(ArrayLayout(layout of CHAN, n_desc))
        CHAN registers (``chan[j].out_groups``, ``chan[j].in_groups``; ``hw.contract.regmap``).
    desc_idx : Out(range(n_desc)), desc : In(descriptor_layout())
        The descriptor table's read port: the running descriptor's fields, a cycle after
        ``desc_idx`` (``hw.contract.regmap.descriptor_layout``).
    busy, done, error, code, layer : Out
        STATUS fields.
    img_addr, img_re / img_data : the image memory's N read ports.
    src_addr, src_re, src_sel / src_data : activation read (src_sel 1 = A, 2 = B).
    dst_addr, dst_we, dst_sel, dst_data : activation write.
    dst_we_next : the value ``dst_we`` takes in the next cycle (for write enables registered by
        the memories, one per buffer).
    w_addr, w_re / w_data : weight memory read.
    p_addr, p_re / p_data : parameter memory read.
    lg_we, lg_base, lg_data : logits write (lane c to class lg_base + c).
    lc_we, lc_idx, lc_val : LAYER_CYCLES write.
    inc : Out(per-counter increments this cycle)
    """

    INC_FIELDS = ("MACS", "GATED_PE_CYCLES", "STALL_CYCLES", "BUSY_CYCLES", "IMG_RD", "ACTA_RD", "ACTB_RD",
                  "ACTA_WR", "ACTB_WR", "WGT_RD", "PRM_RD", "ACC_RD", "ACC_WR", "LINE_RD", "LINE_WR",
                  "LOGIT_WR")

    def __init__(self, cfg):
        if not hasattr(cfg, "rows"):
            raise TypeError(f"Sequencer takes an ArrayConfig, got {cfg!r}")
        n = cfg.rows
        check_sequencer_size(n)
        self._cfg = cfg
        nd = cfg.n_desc
        inc_bits = (n * n).bit_length() + 1
        sig = {
            "start": In(1), "abort": In(1),
            "first_layer": In(8), "num_layers": In(8), "width": In(8),
            "chan": In(data.ArrayLayout(register_layout(regmap(cfg).reg("CHAN")), nd)),
            "desc_idx": Out(range(nd)), "desc": In(descriptor_layout()),
            "busy": Out(1), "done": Out(1), "error": Out(1), "code": Out(4), "layer": Out(8),
            "img_addr": Out(data.ArrayLayout(range(cfg.img_depth), n)), "img_re": Out(n),
            "img_data": In(data.ArrayLayout(8 * cfg.img_channels, n)),
            "src_addr": Out(range(cfg.act_depth)), "src_re": Out(1), "src_sel": Out(2),
            "src_data": In(8 * n),
            "dst_addr": Out(range(cfg.act_depth)), "dst_we": Out(1), "dst_we_next": Out(1), "dst_sel": Out(2),
            "dst_data": Out(8 * n),
            "w_addr": Out(range(cfg.wgt_depth)), "w_re": Out(1), "w_data": In(8 * n),
            "p_addr": Out(range(cfg.prm_depth)), "p_re": Out(1), "p_data": In(64 * n),
            "lg_we": Out(n), "lg_base": Out(range(cfg.max_classes + n)),
            "lg_data": Out(data.ArrayLayout(signed(32), n)),
            "lc_we": Out(1), "lc_idx": Out(range(nd)), "lc_val": Out(32),
            "inc": Out(data.StructLayout({k: inc_bits for k in self.INC_FIELDS})),
        }
        super().__init__(sig)

    @property
    def cfg(self):
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        N = cfg.rows
        LOGN = N.bit_length() - 1
        GM = cfg.max_groups
        ICH = cfg.img_channels
        m.submodules.array = arr = SystolicArray(N)
        m.submodules.requant = req = Requant(N)
        assert req.latency == REQ_LATENCY and arr.latency == ARRAY_LATENCY(N)
        # tags[k] is a pixel's tag k + 1 cycles after its issue: the array takes it at tag
        # READ_LATENCY - 1 (its words registered behind the memories) and its sums come out at
        # tag AO
        AI = READ_LATENCY - 1
        AO = AI + arr.latency

        m.submodules.acc_mem = acc_mem = Memory(shape=unsigned(32 * N), depth=cfg.acc_depth, init=[])
        m.submodules.line_mem = line_mem = Memory(shape=unsigned(8 * N), depth=cfg.line_depth, init=[])
        acc_rd = acc_mem.read_port()
        acc_wr = acc_mem.write_port()
        line_wr = line_mem.write_port()
        line_rd = line_mem.read_port(transparent_for=(line_wr,))

        # ---------------------------------------------------------------- run state
        j = Signal(8)  # descriptor running
        j_end = Signal(9)
        producer = Signal(8)  # out groups of the last conv run (0: none yet)
        done, err, code = Signal(name="done"), Signal(name="err"), Signal(4, name="code")
        m.d.comb += [self.done.eq(done), self.error.eq(err), self.code.eq(code), self.layer.eq(j)]

        # Registers that DECODE, SETUP or the iterators write before every use (descriptor
        # fields, decoded sizes and steps, per-row and per-group constants, the tags' data) have
        # no reset: only the control state does. On an FPGA that keeps them off the reset net
        # (thousands of loads on general routing otherwise, see README "FPGA"); in simulation
        # and on power-up they start at their init values all the same.
        # descriptor fields, latched at FETCH
        kind, src, dst = Signal(2, name="kind"), Signal(2, name="src"), Signal(2, name="dst")
        relu, pool, tri, selk = Signal(name="relu"), Signal(name="pool"), Signal(name="tri"), Signal(4, name="selk")
        cin, cout, H, W = (Signal(C16, name=n_, reset_less=True) for n_ in ("cin", "cout", "H", "W"))
        K, S, P, G = Signal(8, name="K"), Signal(8, name="S"), Signal(8, name="P"), Signal(8, name="G")
        w_base, p_base, src_base, dst_base = (Signal(32, name=n_, reset_less=True)
                                              for n_ in ("w_base", "p_base", "src_base", "dst_base"))
        gi, go = Signal(8, name="gi"), Signal(8, name="go")
        # 2P - K + 1 and + 2, latched with the fields: Ho = ((H + 2P - K) >> (S == 2)) + 1 is then
        # one addition, H + pk1 or (H + pk2) >> 1 (equal whenever H + 2P >= K, else BAD_SHAPE)
        pk1, pk2 = Signal(signed(11), name="pk1", reset_less=True), Signal(signed(11), name="pk2", reset_less=True)
        m.d.comb += self.desc_idx.eq(j)
        desc = self.desc  # registered in the bus: descriptor j of the previous cycle
        # layer j's channel counts, registered alike (read in FETCH, its second cycle): the
        # uniform width overrides the per-layer channel-count register
        gi_now, go_now = Signal(8, name="gi_now"), Signal(8, name="go_now")
        m.d.sync += [gi_now.eq(Mux(self.width != 0, self.width, self.chan[j].in_groups)),
                     go_now.eq(Mux(self.width != 0, self.width, self.chan[j].out_groups))]
        # src == SRC_IMAGE as a register of its own, loaded with src in FETCH (one of the most
        # read flags: no compare in front of its ~100 loads)
        image = Signal(name="image")

        # derived in DECODE
        Ho, Wo, Hc, Wc, Hout, Wout = (Signal(C16, name=n_, reset_less=True)
                                      for n_ in ("Ho", "Wo", "Hc", "Wc", "Hout", "Wout"))
        HW, HWo = Signal(32, reset_less=True, name="HW"), Signal(32, reset_less=True, name="HWo")
        sW = Signal(C16 + 2, reset_less=True, name="sW")
        KK = Signal(range(cfg.max_kernel ** 2 + 1), reset_less=True, name="KK")
        # K and P clamped to max_kernel (a layer with a larger K or P is BAD_SHAPE whatever the
        # products below say), so the products with them are small (3 bits x 16)
        KB = cfg.max_kernel.bit_length()
        Kc, Pc = Signal(KB, reset_less=True, name="Kc"), Signal(KB, reset_less=True, name="Pc")
        BR = Signal(C16, reset_less=True)
        gs_in, gs_out = Signal(C16, reset_less=True, name="gs_in"), Signal(C16, reset_less=True, name="gs_out")
        n_in, n_out = Signal(C16, reset_less=True, name="n_in"), Signal(C16, reset_less=True, name="n_out")
        KR = Signal(8, reset_less=True, name="KR")
        nq_tap = Signal(8, reset_less=True, name="nq_tap")
        kq_lt = Signal(cfg.max_kernel, reset_less=True, name="kq_lt")  # KR * q < K, q = 0 .. max_kernel - 1
        KCin = Signal(C16, reset_less=True, name="KCin")
        dec_err = Signal(4)
        thr_out = [Signal(C16 + 4, name=f"thr_out{g}", reset_less=True) for g in range(GM)]  # g * gs_out
        thr_in = [Signal(C16 + 4, name=f"thr_in{g}", reset_less=True) for g in range(GM)]  # (g + 1) * gs_in
        # per-row constants of the image (tap) mode: kernel row offset, column, channel
        r_dkh = [Signal(8, name=f"r_dkh{r}", reset_less=True) for r in range(N)]
        r_kw = [Signal(8, name=f"r_kw{r}", reset_less=True) for r in range(N)]
        r_ch = [Signal(range(max(ICH, 2)), name=f"r_ch{r}", reset_less=True) for r in range(N)]
        r_dkhW = [Signal(C16 + 8, name=f"r_dkhW{r}", reset_less=True) for r in range(N)]
        # and its bounds: H - dkh (the row's y bound before the chunk's cb), -kw and W - kw
        r_hmd = [Signal(signed(SA), name=f"r_hmd{r}", reset_less=True) for r in range(N)]
        r_xlo = [Signal(signed(SA), name=f"r_xlo{r}", reset_less=True) for r in range(N)]
        r_xhi = [Signal(signed(SA), name=f"r_xhi{r}", reset_less=True) for r in range(N)]
        # for the row-end flag (x_end): Wc - 2, and whether a row is one pixel wide
        Wc_m2, wc_one = Signal(C16, name="Wc_m2", reset_less=True), Signal(name="wc_one", reset_less=True)
        # the row being built
        tr_dkh = Signal(8, reset_less=True, name="tr_dkh")
        tr_kw = Signal(8, reset_less=True, name="tr_kw")
        tr_ch = Signal(8, reset_less=True, name="tr_ch")
        # the table steps in DECODE's cycles 2 .. N + 1: a register set a cycle ahead from dsel
        # (0 outside DECODE; a failure clears it), so no OR of dsel's bits sits in front of its
        # enables
        tr_step = Signal()
        tr_dkhW = Signal(C16 + 8, reset_less=True)
        # the last channel and column of a kernel row (0 when cin or K is 0: the row table's
        # wraps are then equalities, no adder in front of the compare)
        cin_m1, K_m1 = Signal(C16, name="cin_m1", reset_less=True), Signal(8, name="K_m1", reset_less=True)
        bad_desc_q, bad_groups_q, bad_shape_q = (Signal(name=n_, reset_less=True)  # the checks, at cycle 17
                                                 for n_ in ("bad_desc_q", "bad_groups_q", "bad_shape_q"))
        # decode-time sizes for the checks: words read and written, and their ends
        # The words-read/-written checks multiply clamped factors: a factor is clamped to
        # CLAMP > max(act_depth, img_depth) (a clamped factor times a nonzero one exceeds every
        # bound; a zero factor gives the exact 0), so the products are exact whenever they are
        # within the bounds and over them otherwise, with LB x LB-bit multipliers.
        LB = (max(cfg.act_depth, cfg.img_depth) + 1).bit_length()
        CLAMP = (1 << LB) - 1

        def clamp(v):
            return Mux(v > CLAMP, CLAMP, v)[:LB]

        tin_c, tout_c, HW_c, HWo_c = (Signal(LB, name=n_, reset_less=True)
                                      for n_ in ("tin_c", "tout_c", "HW_c", "HWo_c"))
        # the products built along the dividers (see horner)
        n_in_q, n_out_q = Signal(C16, name="n_in_q", reset_less=True), Signal(C16, name="n_out_q", reset_less=True)
        BRsW_q, BRWo_q, BRWc_q = (Signal(32, name=n_, reset_less=True) for n_ in ("BRsW_q", "BRWo_q", "BRWc_q"))
        KRB = N.bit_length()  # KR <= N
        in_words = Signal(2 * LB, reset_less=True, name="in_words")
        out_words = Signal(2 * LB, reset_less=True, name="out_words")
        # ... each product in registered parts of PB bits of its second factor (LB x PB LUT
        # multipliers: an LB x LB one was a 16-cell path), summed a cycle later
        PB = 4
        NPB = (LB + PB - 1) // PB
        in_pp = [Signal(LB + PB, name=f"in_pp{k}", reset_less=True) for k in range(NPB)]
        out_pp = [Signal(LB + PB, name=f"out_pp{k}", reset_less=True) for k in range(NPB)]
        # the room left in each buffer past a layer's base (-1 when the base is past the end),
        # so the end checks compare a product with a register: no 33-bit add in front of them
        RB = max(cfg.act_depth, cfg.prm_depth).bit_length() + 1
        src_room, dst_room, prm_room = (Signal(signed(RB), name=n_, reset_less=True)
                                        for n_ in ("src_room", "dst_room", "prm_room"))
        n_out_t = Signal(C16, reset_less=True)  # ceil(n_out / N): the o-tiles' parameter entries
        shape_a = Signal(2, name="shape_a")  # DECODE cycle 7's checks, in two halves (ORed at 17)
        # DECODE's verdict, registered in its second-to-last cycle: fail (and the code) or go on,
        # so one register enables a failure's loads in the last cycle, not the code compare and
        # the large products' checks (R's -6 seed-1 worst path, shape_b -> iss)
        dfail, dcode = Signal(name="dfail"), Signal(4, name="dcode")
        # ... and its terms a cycle earlier where their operands allow (all but the output words'
        # check): V's -6 seed-2 worst path was `kind -> dfail`, two die-wide routes through
        # the compares of the verdict's cycle
        shape_c = Signal(name="shape_c")
        conv_c = Signal(name="conv_c")
        # step sizes of the iterators' running products
        PW, KRW, BRsW, BRWo, BRWc, HcWc = (Signal(32, name=n_, reset_less=True)
                                           for n_ in ("PW", "KRW", "BRsW", "BRWo", "BRWc", "HcWc"))
        # per group g of the triangle: input extent of an o-tile whose last channel is in g
        # (active and full), and the channel tiles of a full o-tile's input; tiles_notri
        # without the triangle (each iterator multiplies by K*K in a register of its own)
        ext_c = [Signal(C16, name=f"ext_c{g}", reset_less=True) for g in range(GM)]
        ext_f = [Signal(C16, name=f"ext_f{g}", reset_less=True) for g in range(GM)]
        tiles_t = [Signal(C16, name=f"tiles_t{g}", reset_less=True) for g in range(GM)]
        tiles_notri = Signal(C16, reset_less=True)
        # image (tap) mode rows of a kernel-row slice: KR * K*Cin, and the last slice's
        KRKC = Signal(C16, reset_less=True, name="KRKC")
        lastKC = Signal(C16, reset_less=True, name="lastKC")
        kb_last = Signal(8, reset_less=True, name="kb_last")
        # activation address steps (mod 2^32): kw -> 0 with kh + 1, kh -> 0 with the next channel
        # tile, the start of the next output row; the address of pixel 0 without the iterator's
        # part (normal / tap mode); per tap-mode row, its constant offset dkh*W + kw
        dKW, dKH, KW1, rowjump, sbase, tconst = (Signal(32, name=n_, reset_less=True) for n_ in
                                                 ("dKW", "dKH", "KW1", "rowjump", "sbase", "tconst"))
        r_off = [Signal(32, name=f"r_off{r}", reset_less=True) for r in range(N)]

        div_br, div_gi, div_go = _Divider(m, "div_br"), _Divider(m, "div_gi"), _Divider(m, "div_go")

        # ---------------------------------------------------------------- chunk iterators
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
        # group select in front of the iterators' ``rem`` subtracters (R's -6 seed-2 worst path)
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
                    self.rv.eq(Mux(image, Mux(self.remk <= KR, lastKC, KRKC), _min(N, self.rem))),
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
                # in front of the compare (Q's -6 seed-2 worst path, 23 cells)
                m.d.sync += self.cols2.eq(Mux(self.rem_o >= 2 * N, N, self.rem_o - N))
                m.d.sync += [self.ext2.eq(ext_of(ge_code(self.lim2, lt_nout, f"{name}_ge_n"))),
                             self.tiles2.eq(tiles_of(ge_code(self.lim2, lt_cout, f"{name}_ge_c")))]

            def init(self):
                cols = _min(N, n_out)
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

        # ---------------------------------------------------------------- weight loader
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
        # every state's guard turns into a failure's loads (a -8 worst path: ld_rv -> dsel)
        ld_rowin = Signal(name="ld_rowin")
        m.d.comb += [self.w_addr.eq(w_word), self.w_re.eq(ld_active & ld_rowin)]
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
            m.d.comb += [arr.w_data[c].eq(Mux(wl_ok, self.w_data.word_select(c, 8).as_signed(), 0)),
                         arr.w_en[c].eq(wl_en[c])]

        # ---------------------------------------------------------------- issue state
        since = Signal(C16)  # cycles since the chunk's first issue
        Pn_m1 = Signal(C16)  # pixels in the chunk - 1
        per_m2 = Signal(C16)  # max(P, N) - 2: STREAM length - 2
        # STREAM's last cycle (since == max(P, N) - 1), a register set a cycle ahead (since ==
        # per_m2; 0 from SETUP: max(P, N) - 1 >= 3), so no 16-bit compare sits in front of the
        # transitions out of STREAM (L's -6 worst path: since -> the drain counter's enable)
        st_last = Signal(name="st_last")
        iss = Signal()  # STREAM still issuing (since < P)
        # its next value, assigned (comb) where iss is set or cleared: the register loads it, and
        # so does a twin, `iss_step`, that enables only the issue steps (x, y, the bounds flags,
        # the read addresses, out_row: a few hundred flip-flops), while iss drives the tags, the
        # read enables and the counters. One flip-flop drove both (V's -6 seed 2: `iss ->
        # out_row`, 10 endpoints up to -1.35 ns, two die-wide routes)
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
        # N + 2 address adders (W's -6 seed 1: `seq.S -> img_addr`, 38 endpoints)
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
        m.d.comb += [self.src_addr.eq(saddr), self.src_sel.eq(src)]
        AB = len(self.img_addr[0])
        ar = [Signal(AB, name=f"ar{r}", reset_less=True) for r in range(N)]
        s_ar = [Signal(AB, name=f"s_ar{r}", reset_less=True) for r in range(N)]
        for r in range(N):
            m.d.sync += s_ar[r].eq(s_saddr + r_off[r])
            m.d.comb += [self.img_addr[r].eq(ar[r]), rmask[r].eq(c_rvm[r] & xok[r] & yok[r])]
        m.d.comb += [self.img_re.eq(Mux(issuing & image, rmask, 0)),
                     self.src_re.eq(issuing & ~image & inb)]

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
                m.d.comb += img_byte.eq(self.img_data[r])
            else:
                with m.Switch(ch_d[r]):
                    for c in range(ICH):
                        with m.Case(c):
                            m.d.comb += img_byte.eq(self.img_data[r].word_select(c, 8))
            val = Mux(image_d, img_byte, self.src_data.word_select(r, 8))
            m.d.comb += arr.x_in[r].eq(Mux(rmask_d[r], val.as_signed(), 0))
        m.d.comb += [arr.x_valid.eq(tv[AI]), arr.x_first.eq(tags[AI].first)]

        # ---------------------------------------------------------------- FSM
        # DECODE's cycle as a one-hot shift register: dsel[k] is 1 in DECODE's cycle k only (FETCH
        # sets bit 0, the last cycle shifts it out, a failure clears it). DECODE's work is outside
        # the FSM, under these bits, so neither the state nor a compare of a cycle count sits in
        # front of the enables of its products and tables.
        dsel = Signal(DECODE_CYCLES, name="dsel")
        m.d.sync += dsel.eq(dsel << 1)
        # A run of DECODE cycles (start + 1 .. start + steps) as registered strobes set a cycle
        # ahead: `step` in those cycles, `first` in the first of them. 0 outside DECODE (a
        # failure clears them with dsel).
        windows = {}

        def window(start, steps):
            if (start, steps) not in windows:
                first = Signal(name=f"dfirst_{start}_{steps}")
                step = Signal(name=f"dstep_{start}_{steps}")
                m.d.sync += [first.eq(dsel[start]), step.eq(dsel[start:start + steps].any())]
                windows[(start, steps)] = (first, step)
            return windows[(start, steps)]

        def shift_add(dst, bit, x, start, steps):
            """``dst = y * x`` in DECODE by Horner's rule, no multiplier: in each of the ``steps``
            cycles after ``start`` ``dst`` doubles (0 in the first) and adds ``x`` when ``bit``
            (y's bits, most significant first) is 1; valid from ``start + steps + 1``."""
            first, step = window(start, steps)
            with m.If(step):
                m.d.sync += dst.eq(Mux(first, 0, dst << 1) + Mux(bit, x, 0))

        def serial_mul(dst, a, b, start, bits):
            """``dst = a * b``: ``b``'s bits come out of a shift register of its own, loaded in
            the first step (``a`` and ``b`` hold still from ``start + 1`` on)."""
            first, step = window(start, bits)
            sh = Signal(bits, name=f"{dst.name}_sh")
            with m.If(step):
                m.d.sync += sh.eq(Mux(first, b, sh) << 1)
            shift_add(dst, Mux(first, b[-1], sh[-1]), a, start, bits)

        def horner(dst, div, x, first):
            """``dst = div.q * x`` alongside the divider whose 16 steps start at ``first``: each
            quotient bit is ``div.q[0]`` the cycle after its step."""
            shift_add(dst, div.q[0], x, first, C16)

        drain = Signal(range(drain_cycles(N) + 1))
        lcnt = Signal(32)
        # busy (every state but IDLE) is a register of its own, set and cleared with the
        # transitions (a state decode would sit in front of the memories' address multiplexers):
        # it rises leaving IDLE and falls entering it
        busy = Signal()
        m.d.comb += self.busy.eq(busy)
        m.d.comb += [self.lc_idx.eq(j)]
        # `cur` steps in STREAM's first cycle: a strobe registered in SETUP (cleared when SETUP
        # fails), so the state decode is not in front of the iterator's enables (~300 loads)
        cur_adv = Signal()
        m.d.sync += cur_adv.eq(0)
        setup = Signal(name="setup")  # 1 in SETUP (see below)
        with m.If(cur_adv):
            emit_advance(cur)

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
            with m.If(self.abort):
                fail(Error.ABORTED)

        # the tap-mode row table steps (DECODE's cycles 2 .. N + 1; see tr_step)
        # The table matters only to a layer that runs in tap mode, where cin <= ICH and
        # K <= max_kernel (else DECODE fails it): the wrap compares look at those bits only
        CHB = max(1, (ICH - 1).bit_length())
        with m.If(tr_step):
            wrap_c = tr_ch[:CHB] == cin_m1[:CHB]  # tr_ch + 1 >= cin
            wrap_k = wrap_c & (tr_kw[:KB] == K_m1[:KB])  # and tr_kw + 1 >= K
            m.d.sync += [tr_ch.eq(Mux(wrap_c, 0, tr_ch + 1)),
                         tr_kw.eq(Mux(wrap_c, Mux(wrap_k, 0, tr_kw + 1), tr_kw)),
                         tr_dkh.eq(Mux(wrap_k, tr_dkh + 1, tr_dkh)),
                         tr_dkhW.eq(Mux(wrap_k, tr_dkhW + W, tr_dkhW))]
        # SETUP (one cycle per chunk) is also a register of its own, `setup`, set with the
        # transitions into it (PRELOAD's last row, the end of a STREAM with a chunk to follow) and
        # cleared by a failure. SETUP's loads, and STREAM's issue steps under `issuing` (1 only in
        # STREAM), are here, outside the FSM, so no state decode sits in front of their enables
        # (G's worst path was seq_state -> out_row in 4 of its 6 runs). They come before the FSM,
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
        # DECODE's work, in its cycle k under dsel[k] (outside the FSM, before it: a failure's
        # loads win). Every product and check gets a cycle of its own: the dividers run from cycle 0
        # to 17 (the products with their quotients built alongside), H*W, Hout*Wout and
        # Hc*Wc by shift and add meanwhile, the small products (3-bit K and P) and the
        # checks scheduled around them; the tap-mode row table is built one row per
        # cycle; the checks on the large products come last (cycle 22).
        with m.If(dsel[0]):
            ho = Mux(S == 2, (H + pk2) >> 1, H + pk1)  # ((H + 2P - K) >> (S == 2)) + 1
            wo = Mux(S == 2, (W + pk2) >> 1, W + pk1)
            m.d.sync += [Ho.eq(ho), Wo.eq(wo), sW.eq(Mux(S == 2, W << 1, W)),
                         Kc.eq(Mux(K > cfg.max_kernel, cfg.max_kernel, K)),
                         Pc.eq(Mux(P > cfg.max_kernel, cfg.max_kernel, P))]
            div_gi.start(cin, G)
            div_go.start(cout, G)
            m.d.sync += [cin_m1.eq(Mux(cin == 0, 0, cin - 1)), K_m1.eq(Mux(K == 0, 0, K - 1))]
        with m.If(dsel[1]):
            wc = Mux(pool, Wo & ~1, Wo)
            m.d.sync += [Hc.eq(Mux(pool, Ho & ~1, Ho)), Wc.eq(wc),
                         Hout.eq(Mux(pool, Ho >> 1, Ho)), Wout.eq(Mux(pool, Wo >> 1, Wo))]
            div_br.start(cfg.acc_depth, wc)
            m.d.sync += [KK.eq(Kc * Kc), KCin.eq(Kc * cin), tr_ch.eq(0), tr_kw.eq(0), tr_dkh.eq(0),
                         tr_dkhW.eq(0)]
            m.d.sync += [tin_c.eq(clamp((cin + N - 1) >> LOGN)), tout_c.eq(clamp((cout + N - 1) >> LOGN))]
        with m.If(window(0, 16)[1]):  # cycles 1 .. 16
            div_gi.step()
            div_go.step()
        with m.If(window(1, 16)[1]):  # cycles 2 .. 17
            div_br.step()
        with m.If(dsel[2]):
            # KR = floor(N / KCin) (at most N): k * KCin <= N as KCin <= N // k, a compare
            # with a constant per k rather than a product and a compare
            kr = sum((Mux(KCin <= N // k, 1, 0) for k in range(1, N + 1)), Const(0, 8))
            m.d.sync += [KR.eq(kr), PW.eq(Pc * W), KW1.eq((Kc - 1) * W), dKW.eq(W - (K - 1)),
                         rowjump.eq(sW - Mux(S == 2, (Wc - 1) << 1, Wc - 1)),
                         Wc_m2.eq(Wc - 2), wc_one.eq(Wc == 1)]
        with m.If(dsel[3]):
            # ceil(K / KR) without a divider: the multiples of KR below K (K <= max_kernel
            # whenever the layer is valid), compared in cycle 3 and counted in 4
            m.d.sync += [kq_lt.eq(Cat(KR * q < K for q in range(cfg.max_kernel))),
                         KRW.eq(KR[:KRB] * W), KRKC.eq(KR[:KRB] * KCin),
                         tiles_notri.eq((cin + N - 1) >> LOGN),
                         sbase.eq(src_base - PW - P), tconst.eq(0 - PW - P)]
        with m.If(dsel[4]):
            m.d.sync += nq_tap.eq(Mux(KR != 0, sum(kq_lt[q] for q in range(cfg.max_kernel)), 0))
        with m.If(dsel[5]):
            m.d.sync += kb_last.eq((nq_tap[:KB] - 1) * KR[:KRB])
        with m.If(dsel[6]):
            m.d.sync += lastKC.eq((Kc - kb_last)[:KB] * KCin)
        # the large products by shift and add (H * W from cycle 0, Hout * Wout and Hc * Wc
        # from 2; 16 cycles each) and along the dividers (Horner: q * x, a step behind)
        serial_mul(HW, W, H, 0, C16)
        serial_mul(HWo, Wout, Hout, 2, C16)
        serial_mul(HcWc, Wc, Hc, 2, C16)
        horner(n_in_q, div_gi, gi, 1)
        horner(n_out_q, div_go, go, 1)
        horner(BRsW_q, div_br, sW, 2)
        horner(BRWo_q, div_br, Wout, 2)
        horner(BRWc_q, div_br, Wc, 2)
        with m.If(dsel[7]):
            # the shape checks that need neither the dividers nor the large products
            conv, cls = kind == KIND_CONV, kind == KIND_CLASSIFIER
            m.d.sync += shape_a.eq(Cat(
                (K == 0) | (K > cfg.max_kernel) | ~((S == 1) | (S == 2)) | (P >= K) |
                (H + 2 * P < K) | (W + 2 * P < K) | (cin == 0) | (cout == 0),
                (pool & ((Ho < 2) | (Wo < 2) | ((Wc >> 1) > cfg.line_depth))) |
                (image & ((cin > ICH) | (KCin > N))) |
                (cls & ((Ho != 1) | (Wo != 1) | (cout > cfg.max_classes)))))
        # words read and written: H*W (valid at 17) and Hout*Wout (19), clamped, times
        # the channel tiles
        # (src_end > act_depth is in_words > src_room: the rooms from cycle 4)
        with m.If(dsel[4]):
            m.d.sync += [src_room.eq(Mux(src_base > cfg.act_depth, -1, cfg.act_depth - src_base[:RB])),
                         dst_room.eq(Mux(dst_base > cfg.act_depth, -1, cfg.act_depth - dst_base[:RB])),
                         prm_room.eq(Mux(p_base > cfg.prm_depth, -1, cfg.prm_depth - p_base[:RB]))]
        with m.If(dsel[17]):
            m.d.sync += HW_c.eq(clamp(HW))
        with m.If(dsel[18]):
            m.d.sync += [pp.eq(tin_c * HW_c[PB * k:PB * (k + 1)]) for k, pp in enumerate(in_pp)]
            m.d.sync += dKH.eq(HW - KW1 - (K - 1))
        with m.If(dsel[19]):
            m.d.sync += [in_words.eq(sum(pp << (PB * k) for k, pp in enumerate(in_pp))),
                         HWo_c.eq(clamp(HWo)), n_out_t.eq((n_out + N - 1) >> LOGN)]
        with m.If(dsel[20]):
            m.d.sync += [pp.eq(tout_c * HWo_c[PB * k:PB * (k + 1)]) for k, pp in enumerate(out_pp)]
        with m.If(dsel[21]):
            m.d.sync += out_words.eq(sum(pp << (PB * k) for k, pp in enumerate(out_pp)))
        with m.If(dsel[21]):
            # the shape checks on the large products, after every other check: the input words'
            # and the parameter entries' here (both valid from cycle 20), the output words' (22)
            # next
            m.d.sync += [shape_c.eq(Mux(image, HW > cfg.img_depth, in_words > src_room) | (n_out_t > prm_room)),
                         conv_c.eq(kind == KIND_CONV)]
        with m.If(dsel[22]):
            shape_b = shape_c | (conv_c & (out_words > dst_room))
            m.d.sync += [dfail.eq((dec_err != 0) | shape_b), dcode.eq(Mux(dec_err != 0, dec_err, Error.BAD_SHAPE))]
        # tap-mode rows (dkh, kw, ch) in row order, row r in cycle 2 + r
        for r in range(N):
            with m.If(dsel[2 + r]):
                m.d.sync += [r_dkh[r].eq(tr_dkh), r_kw[r].eq(tr_kw), r_ch[r].eq(tr_ch), r_dkhW[r].eq(tr_dkhW)]
            with m.If(dsel[3 + r]):
                m.d.sync += [r_off[r].eq(r_dkhW[r] + r_kw[r]), r_hmd[r].eq(H - r_dkh[r]),
                             r_xlo[r].eq(-r_kw[r]), r_xhi[r].eq(W - r_kw[r])]
        m.d.sync += tr_step.eq(dsel[1:1 + N].any())  # cycles 2 .. N + 1
        with m.If(dsel[17]):
            m.d.sync += [gs_in.eq(div_gi.q), gs_out.eq(div_go.q)]
        with m.If(dsel[18]):
            m.d.sync += [n_in.eq(Mux(image, cin, n_in_q)),
                         n_out.eq(Mux(kind == KIND_CLASSIFIER, cout, n_out_q))]
        with m.If(dsel[19]):
            # BR * x with BR = q (q & ~1 under pooling) and BR' = BR >> 1 under pooling
            q0 = div_br.q[0]
            m.d.sync += [BRsW.eq(BRsW_q - Mux(pool & q0, sW, 0)), BRWc.eq(BRWc_q - Mux(pool & q0, Wc, 0)),
                         BRWo.eq(Mux(pool, (BRWo_q - Mux(q0, Wout, 0)) >> 1, BRWo_q))]
            m.d.sync += [ext_c[g].eq(_min(n_in, thr_in[g])) for g in range(GM)]
            m.d.sync += [ext_f[g].eq(_min(cin, thr_in[g])) for g in range(GM)]
        with m.If(dsel[20]):
            m.d.sync += [tiles_t[g].eq((ext_f[g] + N - 1) >> LOGN) for g in range(GM)]
        with m.If(dsel[17]):
            # the checks, in hw.contract.schedule.check_layer's order: all but br's at cycle 17
            # (the group dividers' remainders are final), the error code at 18
            conv, cls = kind == KIND_CONV, kind == KIND_CLASSIFIER
            m.d.sync += [
                bad_desc_q.eq(Mux(conv, (src == 3) | ~((dst == BUF_A) | (dst == BUF_B)) | (src == dst),
                                  Mux(cls, ~((src == BUF_A) | (src == BUF_B)) | (dst != DST_LOGITS), 1))),
                bad_groups_q.eq((G == 0) | (G > GM) | (conv & ((go == 0) | (go > G))) |
                                (~image & ((gi == 0) | (gi > G) | ((producer != 0) & (gi != producer))))),
                bad_shape_q.eq(shape_a.any() | (~image & (div_gi.r != 0)) | (conv & (div_go.r != 0)))]
        with m.If(dsel[18]):
            br = Mux(pool, div_br.q & ~1, div_br.q)
            m.d.sync += BR.eq(br)
            for g in range(GM):
                m.d.sync += [thr_out[g].eq(gs_out * g), thr_in[g].eq(gs_in * (g + 1))]
            m.d.sync += dec_err.eq(Mux(bad_desc_q, Error.BAD_DESCRIPTOR,
                                       Mux(bad_groups_q, Error.BAD_GROUPS,
                                           Mux(bad_shape_q | (br == 0), Error.BAD_SHAPE, 0))))
        with m.If(dsel[DECODE_CYCLES - 3]):
            # the iterators' derived registers settle in the last two cycles
            m.d.sync += cur.init() + ld.init()
        with m.FSM(name="seq"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [done.eq(0), err.eq(0), code.eq(0), producer.eq(0), j.eq(self.first_layer),
                                 j_end.eq(self.first_layer + self.num_layers)]
                    with m.If((self.num_layers == 0) | (self.first_layer + self.num_layers > cfg.n_desc)):
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
                    m.d.comb += [self.lc_we.eq(1), self.lc_val.eq(FETCH_CYCLES)]
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
                    m.d.comb += [self.lc_we.eq(1), self.lc_val.eq(lcnt + 1)]
                    m.d.sync += j.eq(j + 1)
                    with m.If(kind == KIND_CONV):
                        m.d.sync += producer.eq(go)
                    with m.If(j + 1 == j_end):
                        m.d.sync += [done.eq(1), busy.eq(0)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "FETCH0"
                guard()

        # ---------------------------------------------------------------- accumulate (t + 1 + AL)
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
                     self.p_addr.eq(p_word), self.p_re.eq(p_rd)]
        acc_prev = [Signal(signed(32), name=f"acc_prev{c}", reset_less=True) for c in range(N)]
        m.d.sync += [acc_prev[c].eq(acc_rd.data.word_select(c, 32).as_signed()) for c in range(N)]
        bias = [Signal(signed(32), name=f"bias{c}", reset_less=True) for c in range(N)]  # tA's o-tile
        req_m = [Signal(16, name=f"req_m{c}", reset_less=True) for c in range(N)]  # tB's o-tile
        req_s = [Signal(6, name=f"req_s{c}", reset_less=True) for c in range(N)]
        for c in range(N):
            lane = self.p_data.word_select(c, 64)
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
                         self.lg_data[c].eq(acc_new[c])]
        # the o-tile's valid columns: the logits' write enables, and the columns past the last
        # are zeroed in the requantizer's last stage, so its output register is the masked value
        # (no mask between it and the pool's max)
        col_ok = Cat(*[Const(c, 8) < tB.cols for c in range(N)])
        m.d.comb += [acc_wr.addr.eq(tB.pix), acc_wr.data.eq(Cat(*acc_new)), acc_wr.en.eq(tB_v & ~tB.clast),
                     req.relu.eq(relu), req.valid.eq(tB_v & tB.clast & (kind == KIND_CONV)),
                     req.zero.eq(~col_ok)]
        cls_write = tB_v & tB.clast & (kind == KIND_CLASSIFIER)
        m.d.comb += [self.lg_base.eq(tB.och), self.lg_we.eq(Mux(cls_write, col_ok, 0))]

        # ---------------------------------------------------------------- pool and write (tB + REQ_LATENCY)
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
        m.d.comb += [self.dst_addr.eq(o_addr), self.dst_sel.eq(dst), self.dst_we.eq(o_we),
                     self.dst_we_next.eq(w_we), self.dst_data.eq(o_data)]

        # ---------------------------------------------------------------- counter increments
        # registered: an increment lands in its counter one cycle after the event (two for IMG_RD,
        # counted from the registered read enables); the counters' final values are the same,
        # and the host reads them after STATUS.DONE
        img_re_d = Signal(N)
        m.d.sync += img_re_d.eq(self.img_re)
        inc = self.inc
        m.d.sync += [
            inc.BUSY_CYCLES.eq(busy),
            inc.MACS.eq(Mux(issuing, macs_px, 0)),
            inc.GATED_PE_CYCLES.eq(Mux(busy, N * N - Mux(issuing, macs_px, 0), 0)),
            inc.STALL_CYCLES.eq(busy & ~issuing),
            inc.IMG_RD.eq(sum((img_re_d[r] for r in range(N)), Const(0, 8))),
            inc.ACTA_RD.eq(self.src_re & (src == BUF_A)), inc.ACTB_RD.eq(self.src_re & (src == BUF_B)),
            inc.ACTA_WR.eq(self.dst_we & (dst == BUF_A)), inc.ACTB_WR.eq(self.dst_we & (dst == BUF_B)),
            inc.WGT_RD.eq(self.w_re), inc.PRM_RD.eq(self.p_re), inc.ACC_RD.eq(acc_rd.en), inc.ACC_WR.eq(acc_wr.en),
            inc.LINE_RD.eq(line_rd.en), inc.LINE_WR.eq(line_wr.en),
            inc.LOGIT_WR.eq(sum((self.lg_we[c] for c in range(N)), Const(0, 8))),
        ]
        return m
