"""The layer's registers: the running descriptor's fields, latched in FETCH, and every size,
step, threshold and check result that DECODE derives from them (``decode`` writes them).

Contract: after DECODE, every register here holds its value for the whole layer; none of them
has a reset (each is written before the layer reads it), except the run state (``j``,
``producer``, ``done``, ``err``, ``code``), which drives STATUS.
"""
from amaranth import Mux, Signal, signed

from .context import C16, SA
from .divider import Divider


def build(m, seq, platform, ctx):
    """Declare the run state, the descriptor fields and DECODE's registers; FETCH's channel counts."""
    (GM, ICH, N, cfg) = ctx.take(
        "GM ICH N cfg")
    j = Signal(8)  # descriptor running
    j_end = Signal(9)
    producer = Signal(8)  # out groups of the last conv run (0: none yet)
    done, err, code = Signal(name="done"), Signal(name="err"), Signal(4, name="code")
    m.d.comb += [seq.done.eq(done), seq.error.eq(err), seq.code.eq(code), seq.layer.eq(j)]

    # Registers that DECODE, SETUP or the iterators write before every use (descriptor
    # fields, decoded sizes and steps, per-row and per-group constants, the tags' data) have
    # no reset: only the control state does. On an FPGA that keeps them off the reset net
    # (thousands of loads on general routing otherwise, docs/fpga-history.md); in simulation
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
    m.d.comb += seq.desc_idx.eq(j)
    desc = seq.desc  # registered in the bus: descriptor j of the previous cycle
    # layer j's channel counts, registered alike (read in FETCH, its second cycle): the
    # uniform width overrides the per-layer channel-count register
    gi_now, go_now = Signal(8, name="gi_now"), Signal(8, name="go_now")
    m.d.sync += [gi_now.eq(Mux(seq.width != 0, seq.width, seq.chan[j].in_groups)),
                 go_now.eq(Mux(seq.width != 0, seq.width, seq.chan[j].out_groups))]
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
    # the large products' checks (``shape_b -> iss`` was too long for 100 MHz on the ECP5)
    dfail, dcode = Signal(name="dfail"), Signal(4, name="dcode")
    # ... and its terms a cycle earlier where their operands allow (all but the output words'
    # check): computed in the verdict's cycle, `kind -> dfail` took two die-wide routes
    # through its compares
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

    div_br, div_gi, div_go = Divider(m, "div_br"), Divider(m, "div_gi"), Divider(m, "div_go")
    ctx.give(locals(),
             "BR BRWc BRWc_q BRWo BRWo_q BRsW BRsW_q G H HW HW_c HWo HWo_c Hc HcWc Ho Hout K KB KCin "
             "KK KR KRB KRKC KRW KW1 K_m1 Kc P PB PW Pc RB S W Wc Wc_m2 Wo Wout bad_desc_q "
             "bad_groups_q bad_shape_q cin cin_m1 clamp code conv_c cout dKH dKW dcode dec_err desc "
             "dfail div_br div_gi div_go done dst dst_base dst_room err ext_c ext_f gi gi_now go "
             "go_now gs_in gs_out image in_pp in_words j j_end kb_last kind kq_lt lastKC n_in n_in_q "
             "n_out n_out_q n_out_t nq_tap out_pp out_words p_base pk1 pk2 pool prm_room producer r_ch "
             "r_dkh r_dkhW r_hmd r_kw r_off r_xhi r_xlo relu rowjump sW sbase selk shape_a shape_c src "
             "src_base src_room tconst thr_in thr_out tiles_notri tiles_t tin_c tout_c tr_ch tr_dkh "
             "tr_dkhW tr_kw tr_step tri w_base wc_one")
