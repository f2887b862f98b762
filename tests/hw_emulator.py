"""A memory-level NumPy emulator of the accelerator's schedule (test helper, not a product part).

It walks the chunks of ``hw.schedule.plan_layer`` and, like the hardware, reads the packed weight
words of ``hw.program`` and activation words at the addresses of ``hw/DESIGN.md`` (zero for
padding), accumulates, requantizes with ``model.golden.requantize``, pools and writes words. If it
matches the golden model, the schedule and the memory layouts are right before any RTL runs.
"""
from __future__ import annotations

import numpy as np

from hw.schedule import (BUF_A, BUF_B, KIND_CLASSIFIER, SRC_IMAGE, geometry, out_dims, plan_run)
from model.golden import requantize


def emulate(program, image_mem: np.ndarray, chan, width: int = 0):
    cfg, n = program.cfg, program.cfg.rows
    mem = {BUF_A: np.zeros((cfg.act_depth, n), np.int8), BUF_B: np.zeros((cfg.act_depth, n), np.int8)}
    logits = np.zeros(cfg.max_classes, np.int64)
    snapshots = []  # per conv layer run: its destination buffer right after it
    run = plan_run(program.descs, chan, cfg, 0, program.num_layers, width)
    assert not run.error, f"plan error {run.error} at layer {run.error_layer}"
    for lp in run.layers:
        if lp.skipped:
            continue
        d = program.descs[lp.index]
        K, s, p, H, W = d["kernel"], d["stride"], d["pad"], d["h"], d["w"]
        ho, wo, hc, wc = geometry(d)
        oh, ow = out_dims(d)
        acc = np.zeros((cfg.acc_depth, n), np.int64)
        for ch in lp.chunks:
            wt = program.weights[d["w_base"] + ch.wchunk * n: d["w_base"] + ch.wchunk * n + n].astype(np.int64)
            y0 = ch.block * lp.block_rows
            for pix in range(ch.pixels):
                y, x = y0 + pix // wc, pix % wc
                xin = np.zeros(n, np.int64)
                for r in range(ch.rows):
                    if lp.tap_mode:
                        cin = d["cin"]
                        kh, kw, c = ch.ch_base + r // (K * cin), (r // cin) % K, r % cin
                    else:
                        kh, kw, c = ch.kh, ch.kw, None
                    yy, xx = y * s + kh - p, x * s + kw - p
                    if 0 <= yy < H and 0 <= xx < W:
                        if lp.tap_mode:
                            xin[r] = image_mem[yy * W + xx, c]
                        else:
                            word = mem[d["src"]][d["src_base"] + ((ch.ch_base // n) * H + yy) * W + xx]
                            xin[r] = word[r]
                psum = xin[:ch.rows] @ wt[:ch.rows, :]
                e = d["p_base"] + ch.otile
                acc[pix] = psum + (program.bias[e] if ch.first else acc[pix])
                if not ch.last:
                    continue
                if d["kind"] == KIND_CLASSIFIER:
                    logits[ch.otile * n: ch.otile * n + ch.cols] = acc[pix, :ch.cols]
                    continue
                if d["pool"]:
                    continue  # pooled after the block's last chunk (_pool_block)
                yq = requantize(acc[pix], np.maximum(program.M[e], 1), program.S[e], d["relu"])
                yq[ch.cols:] = 0
                mem[d["dst"]][d["dst_base"] + (ch.otile * oh + y) * ow + x] = yq
            if d["pool"] and ch.last:
                _pool_block(mem, d, ch, lp, program, acc, n, wc, oh, ow)
        if d["kind"] != KIND_CLASSIFIER:
            snapshots.append(mem[d["dst"]].copy())
    return snapshots, logits


def _pool_block(mem, d, ch, lp, program, acc, n, wc, oh, ow):
    e = d["p_base"] + ch.otile
    rows = ch.pixels // wc
    y0 = ch.block * lp.block_rows
    yq = requantize(acc[:ch.pixels], np.maximum(program.M[e], 1)[None], program.S[e][None], d["relu"])
    yq[:, ch.cols:] = 0
    yq = yq.reshape(rows, wc, n)
    pooled = yq.reshape(rows // 2, 2, wc // 2, 2, n).max(axis=(1, 3))
    for i in range(rows // 2):
        for j in range(wc // 2):
            mem[d["dst"]][d["dst_base"] + (ch.otile * oh + y0 // 2 + i) * ow + j] = pooled[i, j]
