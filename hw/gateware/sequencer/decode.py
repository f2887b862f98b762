"""DECODE: the layer's shape arithmetic and every check, one product or compare per cycle.

Contract: DECODE lasts ``DECODE_CYCLES`` cycles; ``dsel[k]`` is 1 in its cycle k only. Three
16-step dividers (the group sizes and the pixel-block rows), products by shift and add
(H*W, Hout*Wout, Hc*Wc, and the quotients times their factors alongside the dividers), the
tap-mode row table (one row per cycle) and the checks of ``hw.contract.schedule.check_layer``
in its order. The verdict (``dfail``, ``dcode``) is ready in cycle ``DECODE_CYCLES - 2``; the
iterators are initialised in cycle ``DECODE_CYCLES - 3``.
"""
from amaranth import Cat, Const, Mux, Signal

from ...contract.regmap import Error
from ...contract.schedule import BUF_A, BUF_B, DECODE_CYCLES, DST_LOGITS, KIND_CLASSIFIER, KIND_CONV
from .context import C16, min_


def build(m, seq, platform, ctx):
    """DECODE's one-hot cycle, its serial multipliers, the tap-row table and each cycle's work."""
    (BR, BRWc, BRWc_q, BRWo, BRWo_q, BRsW, BRsW_q, G, GM, H, HW, HW_c, HWo, HWo_c, Hc, HcWc, Ho,
     Hout, ICH, K, KB, KCin, KK, KR, KRB, KRKC, KRW, KW1, K_m1, Kc, LOGN, N, P, PB, PW, Pc, RB, S,
     W, Wc, Wc_m2, Wo, Wout, bad_desc_q, bad_groups_q, bad_shape_q, cfg, cin, cin_m1, clamp, conv_c,
     cout, cur, dKH, dKW, dcode, dec_err, dfail, div_br, div_gi, div_go, dst, dst_base, dst_room,
     ext_c, ext_f, gi, go, gs_in, gs_out, image, in_pp, in_words, kb_last, kind, kq_lt, lastKC, ld,
     n_in, n_in_q, n_out, n_out_q, n_out_t, nq_tap, out_pp, out_words, p_base, pk1, pk2, pool,
     prm_room, producer, r_ch, r_dkh, r_dkhW, r_hmd, r_kw, r_off, r_xhi, r_xlo, rowjump, sW, sbase,
     shape_a, shape_c, src, src_base, src_room, tconst, thr_in, thr_out, tiles_notri, tiles_t,
     tin_c, tout_c, tr_ch, tr_dkh, tr_dkhW, tr_kw, tr_step, wc_one) = ctx.take(
        "BR BRWc BRWc_q BRWo BRWo_q BRsW BRsW_q G GM H HW HW_c HWo HWo_c Hc HcWc Ho Hout ICH K KB "
        "KCin KK KR KRB KRKC KRW KW1 K_m1 Kc LOGN N P PB PW Pc RB S W Wc Wc_m2 Wo Wout bad_desc_q "
        "bad_groups_q bad_shape_q cfg cin cin_m1 clamp conv_c cout cur dKH dKW dcode dec_err "
        "dfail div_br div_gi div_go dst dst_base dst_room ext_c ext_f gi go gs_in gs_out image "
        "in_pp in_words kb_last kind kq_lt lastKC ld n_in n_in_q n_out n_out_q n_out_t nq_tap "
        "out_pp out_words p_base pk1 pk2 pool prm_room producer r_ch r_dkh r_dkhW r_hmd r_kw "
        "r_off r_xhi r_xlo rowjump sW sbase shape_a shape_c src src_base src_room tconst thr_in "
        "thr_out tiles_notri tiles_t tin_c tout_c tr_ch tr_dkh tr_dkhW tr_kw tr_step wc_one")
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
        m.d.sync += [ext_c[g].eq(min_(n_in, thr_in[g])) for g in range(GM)]
        m.d.sync += [ext_f[g].eq(min_(cin, thr_in[g])) for g in range(GM)]
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
    ctx.give(locals(),
             "dsel windows")
