"""The accelerator's schedule, written as plain Python: the executable definition of what the
sequencer does cycle by cycle, and so of every performance counter. The RTL is built to it, the RTL
tests compare the hardware's counters with it, and ``sw/`` uses it as the exact model backend.

Timeline of one run (busy cycles), for each descriptor j = FIRST .. FIRST+NUM-1:

* FETCH (``FETCH_CYCLES`` = 2: the descriptor table is read into a register, then latched). A
  classifier head whose SELECT_K differs from its active input groups is skipped here (its
  LAYER_CYCLES is 2).
* DECODE (``DECODE_CYCLES``): shape arithmetic and every check; a bad layer stops the run with an
  error code.
* PRELOAD (N cycles): the first chunk's weight rows.
* per chunk i: SETUP (1 cycle), ISSUE (P_i cycles, one pixel per cycle), WAIT (max(P_i, N) - P_i):
  the next chunk's weights load into the shadow registers while this one streams.
* DRAIN (``drain_cycles(N)``): the last pixel leaves the array, requantizer and pool stage.

    layer cycles = FETCH_CYCLES + DECODE_CYCLES + N + sum_i (1 + max(P_i, N)) + 2N + REQ_LATENCY + 7

A chunk is one weight tile (N rows x N columns) streamed over one block of output pixels; see
``docs/design.md`` for the tiling.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .regmap import BUF_A, BUF_B, Dst, Error, Kind, Src

# The descriptor's codes, named once in the register map.
KIND_CONV, KIND_CLASSIFIER = Kind.CONV, Kind.CLASSIFIER
SRC_IMAGE, DST_LOGITS = Src.IMAGE, Dst.LOGITS

FETCH_CYCLES = 2  # the descriptor row and channel counts registered, then latched
DECODE_CYCLES = 24  # fixed: 16-step dividers, the checks, the o-tile tables (one product per cycle)
#                    and two cycles for the chunk iterators' registered next-state values
REQ_LATENCY = 5  # hw.gateware.postproc.Requant pipeline depth
READ_LATENCY = 2  # a buffer read's word is used two cycles after its address: the block RAM's
#                   synchronous read, then a register right behind it (hw.gateware.accel), so its slow
#                   clock-to-output ends at a flip-flop, not in the logic and wires after it


def ARRAY_LATENCY(n: int) -> int:  # noqa: N802 (a constant of the array size)
    """hw.gateware.array.SystolicArray.latency: the input register, N - 1 skew, N PEs and the last PE's
    operand and product registers, N - 1 de-skew, less the overlap: 2N + 2."""
    return 2 * n + 2


def drain_cycles(n: int) -> int:
    """Input read (``READ_LATENCY``: 2) + array latency (2N + 2) + accumulate register (1) +
    requantizer + pool stage (1) + y max stage (1) + write stage (1): 2N + 13."""
    return READ_LATENCY + ARRAY_LATENCY(n) + 1 + REQ_LATENCY + 3


@dataclass(frozen=True)
class Chunk:
    otile: int
    block: int
    rows: int  # active array rows (reduction lanes)
    cols: int  # active array columns (output channels)
    pixels: int  # P
    first: bool  # first chunk of its (o-tile, block): acc = psum + bias
    last: bool  # last chunk of its (o-tile, block): requantize and write
    wchunk: int  # index of its N weight words from the layer's W_BASE / N
    # reduction slice: normal mode (ch_base, kh, kw); tap mode (kh_base, -1, -1)
    ch_base: int
    kh: int
    kw: int


@dataclass
class LayerPlan:
    """Everything the hardware does for one descriptor, and the counters it produces."""

    index: int
    skipped: bool = False
    error: int = 0
    tap_mode: bool = False
    n_in: int = 0
    n_out: int = 0
    out_size: tuple = (0, 0)  # (Ho, Wo) of the convolution
    computed: tuple = (0, 0)  # (Hc, Wc): rows/cols actually computed (pool floors odd sizes)
    block_rows: int = 0
    chunks: list = field(default_factory=list)
    counters: dict = field(default_factory=dict)
    # False only for a weight-memory overflow found while an earlier chunk streams: the run
    # stops with BAD_SHAPE as predicted, but its counters up to that cycle are not modelled.
    counters_exact: bool = True

    @property
    def cycles(self) -> int:
        return self.counters.get("BUSY_CYCLES", 0)


def geometry(d: dict) -> tuple[int, int, int, int]:
    """(Ho, Wo, Hc, Wc) of a descriptor."""
    k, s, p = d["kernel"], d["stride"], d["pad"]
    ho = (d["h"] + 2 * p - k) // s + 1
    wo = (d["w"] + 2 * p - k) // s + 1
    hc, wc = (2 * (ho // 2), 2 * (wo // 2)) if d["pool"] else (ho, wo)
    return ho, wo, hc, wc


def out_dims(d: dict) -> tuple[int, int]:
    """(H, W) of the stored output."""
    ho, wo, _, _ = geometry(d)
    return (ho // 2, wo // 2) if d["pool"] else (ho, wo)


def in_extent(d: dict, n_in: int, n_out: int, n: int, t: int) -> int:
    """Input channels o-tile t reads: block lower-triangular layers stop at the group of the
    tile's last output channel."""
    if not d["triangular"]:
        return n_in
    gs_in, gs_out = d["cin"] // d["groups"], d["cout"] // d["groups"]
    last = min((t + 1) * n, n_out) - 1
    return min(n_in, (last // gs_out + 1) * gs_in)


def _chunks(d: dict, n: int, n_in: int, n_out: int, tap: bool, kr: int, block_rows: int, hc: int, wc: int):
    """The chunk sequence in the order the sequencer runs it: o-tile, block, reduction slice."""
    K, cin = d["kernel"], d["cin"]
    n_ot = -(-n_out // n)
    n_blocks = -(-hc // block_rows)
    out, base = [], 0
    for t in range(n_ot):
        cols = min(n, n_out - t * n)
        if tap:
            slices = [(kb, -1, -1, min(kr, K - kb) * K * cin) for kb in range(0, K, kr)]
            full = len(slices)
        else:
            ext = in_extent(d, n_in, n_out, n, t)
            slices = [(cb, kh, kw, min(n, ext - cb)) for cb in range(0, ext, n)
                      for kh in range(K) for kw in range(K)]
            # Weight words are laid out for full width, so every width reads a prefix of each
            # o-tile's chunks: the next o-tile starts after the full-width chunk count.
            full = -(-in_extent(d, d["cin"], d["cout"], n, t) // n) * K * K
        for b in range(n_blocks):
            rows_b = min(block_rows, hc - b * block_rows)
            for q, (cb, kh, kw, rows) in enumerate(slices):
                out.append(Chunk(otile=t, block=b, rows=rows, cols=cols, pixels=rows_b * wc,
                                 first=q == 0, last=q == len(slices) - 1, wchunk=base + q,
                                 ch_base=cb, kh=kh, kw=kw))
        base += full
    return out


def check_layer(d: dict, cfg, gi: int, go: int, producer_go: int | None) -> int:
    """The error code DECODE raises for descriptor ``d`` (0 = runs), in the hardware's priority
    order: descriptor, groups, shape."""
    n, kind = cfg.rows, d["kind"]
    if kind == KIND_CONV:
        if d["src"] not in (SRC_IMAGE, BUF_A, BUF_B) or d["dst"] not in (BUF_A, BUF_B) or d["src"] == d["dst"]:
            return Error.BAD_DESCRIPTOR
    elif kind == KIND_CLASSIFIER:
        if d["src"] not in (BUF_A, BUF_B) or d["dst"] != DST_LOGITS:
            return Error.BAD_DESCRIPTOR
    else:
        return Error.BAD_DESCRIPTOR
    G = d["groups"]
    if not 1 <= G <= cfg.max_groups:
        return Error.BAD_GROUPS
    image = d["src"] == SRC_IMAGE
    if kind == KIND_CONV and not 1 <= go <= G:
        return Error.BAD_GROUPS
    if not image and (not 1 <= gi <= G or (producer_go is not None and gi != producer_go)):
        return Error.BAD_GROUPS
    K, s, p = d["kernel"], d["stride"], d["pad"]
    if not 1 <= K <= cfg.max_kernel or s not in (1, 2) or p >= K:
        return Error.BAD_SHAPE
    if d["h"] + 2 * p < K or d["w"] + 2 * p < K or d["cin"] < 1 or d["cout"] < 1:
        return Error.BAD_SHAPE
    if (not image and d["cin"] % G) or (kind == KIND_CONV and d["cout"] % G):
        return Error.BAD_SHAPE
    ho, wo, hc, wc = geometry(d)
    if d["pool"] and (ho < 2 or wo < 2 or wc // 2 > cfg.line_depth):
        return Error.BAD_SHAPE
    if cfg.acc_depth // wc < (2 if d["pool"] else 1):
        return Error.BAD_SHAPE
    if image:
        if d["cin"] > cfg.img_channels or d["cin"] * K > n or d["h"] * d["w"] > cfg.img_depth:
            return Error.BAD_SHAPE
    elif d["src_base"] + -(-d["cin"] // n) * d["h"] * d["w"] > cfg.act_depth:
        return Error.BAD_SHAPE
    if kind == KIND_CLASSIFIER:
        if ho != 1 or wo != 1 or d["cout"] > cfg.max_classes:
            return Error.BAD_SHAPE
    else:
        oh, ow = out_dims(d)
        if d["dst_base"] + -(-d["cout"] // n) * oh * ow > cfg.act_depth:
            return Error.BAD_SHAPE
    n_out = d["cout"] if kind == KIND_CLASSIFIER else go * (d["cout"] // G)
    if d["p_base"] + -(-n_out // n) > cfg.prm_depth:
        return Error.BAD_SHAPE
    return 0


def plan_layer(index: int, d: dict, cfg, gi: int, go: int, producer_go: int | None = None) -> LayerPlan:
    """Chunks and counters of descriptor ``d`` with ``gi``/``go`` active input/output groups.

    Counters are those of ``hw.contract.regmap.COUNTERS`` that the datapath drives (bus traffic is
    the host's, counted separately)."""
    n = cfg.rows
    plan = LayerPlan(index=index)
    if d["kind"] == KIND_CLASSIFIER and d["select_k"] and d["select_k"] != gi:
        plan.skipped = True
        plan.counters = dict(BUSY_CYCLES=FETCH_CYCLES, STALL_CYCLES=FETCH_CYCLES,
                             GATED_PE_CYCLES=FETCH_CYCLES * n * n)
        return plan
    plan.error = int(check_layer(d, cfg, gi, go, producer_go))
    if plan.error:  # found in the last DECODE cycle: FETCH and DECODE ran, every PE idle
        spent = FETCH_CYCLES + DECODE_CYCLES
        plan.counters = dict(BUSY_CYCLES=spent, STALL_CYCLES=spent, GATED_PE_CYCLES=spent * n * n)
        return plan
    G = d["groups"]
    image = d["src"] == SRC_IMAGE
    plan.tap_mode = image
    plan.n_in = d["cin"] if image else gi * (d["cin"] // G)
    plan.n_out = d["cout"] if d["kind"] == KIND_CLASSIFIER else go * (d["cout"] // G)
    ho, wo, hc, wc = geometry(d)
    plan.out_size, plan.computed = (ho, wo), (hc, wc)
    br = cfg.acc_depth // wc
    if d["pool"]:
        br -= br % 2
    plan.block_rows = br
    kr = n // (d["cin"] * d["kernel"]) if image else 0
    plan.chunks = _chunks(d, n, plan.n_in, plan.n_out, image, kr, br, hc, wc)
    # The weight loader reads rows 0..rows-1 of each chunk's N words; one beyond the weight
    # memory stops the run with BAD_SHAPE in the cycle it is addressed.
    max_word = max(c.wchunk * n + c.rows for c in plan.chunks)
    if d["w_base"] + max_word > cfg.wgt_depth:
        k, r = next((k, r) for k, c in enumerate(plan.chunks) for r in range(c.rows)
                    if d["w_base"] + c.wchunk * n + r >= cfg.wgt_depth)
        plan.error = int(Error.BAD_SHAPE)
        plan.chunks = []
        if k == 0:  # during PRELOAD (row r read in cycle FETCH + DECODE + r): no MAC has run yet
            spent = FETCH_CYCLES + DECODE_CYCLES + r + 1
            plan.counters = dict(BUSY_CYCLES=spent, STALL_CYCLES=spent, GATED_PE_CYCLES=spent * n * n,
                                 WGT_RD=r + 1)
        else:  # while streaming an earlier chunk: counters up to that cycle are not modelled
            plan.counters_exact = False
        return plan
    plan.counters = _count(plan, d, cfg, n, wc)
    return plan


def _count(plan: LayerPlan, d: dict, cfg, n: int, wc: int) -> dict:
    K, s, p, H, W = d["kernel"], d["stride"], d["pad"], d["h"], d["w"]
    c = dict.fromkeys(("MACS", "IMG_RD", "ACTA_RD", "ACTB_RD", "ACTA_WR", "ACTB_WR", "WGT_RD",
                       "PRM_RD", "ACC_RD", "ACC_WR", "LINE_RD", "LINE_WR", "LOGIT_WR"), 0)
    busy = FETCH_CYCLES + DECODE_CYCLES + n + drain_cycles(n)
    issued = 0
    src = {SRC_IMAGE: "IMG_RD", BUF_A: "ACTA_RD", BUF_B: "ACTB_RD"}[d["src"]]
    dst = {BUF_A: "ACTA_WR", BUF_B: "ACTB_WR", DST_LOGITS: None}[d["dst"]]
    cin = d["cin"]
    for ch in plan.chunks:
        busy += 1 + max(ch.pixels, n)
        issued += ch.pixels
        c["MACS"] += ch.pixels * ch.rows * ch.cols
        c["WGT_RD"] += ch.rows
        y0 = ch.block * plan.block_rows
        ys = range(y0, y0 + ch.pixels // wc)
        if plan.tap_mode:  # one replica read per active row whose tap lands inside the image
            for j in range(ch.rows):
                kh, kw = ch.ch_base + j // (K * cin), (j // cin) % K
                c[src] += _inside(ys, wc, s, p, kh, kw, H, W)
        else:
            c[src] += _inside(ys, wc, s, p, ch.kh, ch.kw, H, W)
        if not ch.first:
            c["ACC_RD"] += ch.pixels
        if not ch.last:
            c["ACC_WR"] += ch.pixels
        if ch.first and ch.block == 0 and ch.ch_base == 0:
            c["PRM_RD"] += 1
        if ch.last:
            if dst is None:
                c["LOGIT_WR"] += ch.cols * ch.pixels
            elif d["pool"]:
                c[dst] += ch.pixels // 4
                c["LINE_WR"] += ch.pixels // 4
                c["LINE_RD"] += ch.pixels // 4
            else:
                c[dst] += ch.pixels
    c["BUSY_CYCLES"] = busy
    c["STALL_CYCLES"] = busy - issued
    c["GATED_PE_CYCLES"] = busy * n * n - c["MACS"]
    return {k: v for k, v in c.items() if v or k in ("MACS", "BUSY_CYCLES")}


def _inside(ys, wc: int, s: int, p: int, kh: int, kw: int, H: int, W: int) -> int:
    """Pixels (y in ys, x < wc) whose tap (kh, kw) reads inside the H x W input."""
    ny = sum(1 for y in ys if 0 <= y * s + kh - p < H)
    nx = sum(1 for x in range(wc) if 0 <= x * s + kw - p < W)
    return ny * nx


@dataclass
class RunPlan:
    layers: list
    error: int = 0
    error_layer: int = 0

    @property
    def counters_exact(self) -> bool:
        return all(lp.counters_exact for lp in self.layers)

    @property
    def counters(self) -> dict:
        tot: dict = {}
        for lp in self.layers:
            for k, v in lp.counters.items():
                tot[k] = tot.get(k, 0) + v
        return tot


def plan_run(descs: list[dict], chan: list[tuple[int, int]], cfg, first: int, num: int,
             width: int = 0) -> RunPlan:
    """What one START does: descriptors ``first .. first+num-1`` with the channel-count register
    ``chan[j] = (in_groups, out_groups)`` (or every split layer at ``width`` groups if > 0)."""
    run = RunPlan(layers=[])
    if num < 1 or first + num > cfg.n_desc:
        run.error, run.error_layer = int(Error.BAD_DESCRIPTOR), first
        return run
    producer = None
    for j in range(first, first + num):
        gi, go = (width, width) if width else chan[j]
        lp = plan_layer(j, descs[j], cfg, gi, go, producer)
        run.layers.append(lp)
        if lp.error:
            run.error, run.error_layer = lp.error, j
            break
        if not lp.skipped and descs[j]["kind"] == KIND_CONV:
            producer = go
    return run
