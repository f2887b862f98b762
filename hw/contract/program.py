"""Map an int8 export onto the accelerator: layer descriptors, weight words, parameter entries
and the image, in exactly the memory layouts of ``docs/design.md``. ``sw/`` and the RTL tests both
use this; nothing else packs weights.

One program serves every width: the weight words are laid out for full width and a narrower
width reads a prefix of every o-tile's chunks, so changing width is only a write of the
channel-count register (CHAN) or of WIDTH.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .schedule import (BUF_A, BUF_B, DST_LOGITS, KIND_CLASSIFIER, KIND_CONV, SRC_IMAGE, in_extent,
                       out_dims)


@dataclass
class Program:
    cfg: object
    descs: list  # descriptor dicts (hw.contract.regmap.encode_descriptor fields)
    weights: np.ndarray  # int8 (words, N): weight memory from word 0
    bias: np.ndarray  # int32 (entries, N)
    M: np.ndarray  # int32 (entries, N)
    S: np.ndarray  # int32 (entries, N)
    n_convs: int
    input_shift: int
    logits_desc: list  # descriptor indices of the classifier heads

    def chan(self, groups) -> list[tuple[int, int]]:
        """CHAN register values (in_groups, out_groups) per descriptor for per-layer ``groups``."""
        groups = list(groups)
        if len(groups) != self.n_convs:
            raise ValueError(f"need {self.n_convs} per-layer group counts, got {len(groups)}")
        out = [(0, 0)] * self.cfg.n_desc
        prev = 0
        for j in range(self.n_convs):
            out[j] = (prev, groups[j])
            prev = groups[j]
        for j in self.logits_desc:
            out[j] = (prev, 0)
        return out

    @property
    def num_layers(self) -> int:
        return len(self.descs)


def pack_weights(w: np.ndarray, d: dict, n: int) -> np.ndarray:
    """Weight words of one layer (int8 OIHW ``w`` at full width, descriptor ``d``): per o-tile,
    per chunk, N rows (reduction lanes) of N columns (output channels), zero-padded. A block
    lower-triangular layer stores only the blocks its o-tiles read."""
    K, cin, cout = d["kernel"], d["cin"], d["cout"]
    words = []
    for t in range(-(-cout // n)):
        cols = slice(t * n, min((t + 1) * n, cout))
        if d["src"] == SRC_IMAGE:
            kr = n // (cin * K)
            for kb in range(0, K, kr):
                chunk = np.zeros((n, n), np.int8)
                for j in range(min(kr, K - kb) * K * cin):
                    kh, kw, ch = kb + j // (K * cin), (j // cin) % K, j % cin
                    chunk[j, :cols.stop - cols.start] = w[cols, ch, kh, kw]
                words.append(chunk)
        else:
            ext = in_extent(d, cin, cout, n, t)
            for cb in range(0, ext, n):
                for kh in range(K):
                    for kw in range(K):
                        chunk = np.zeros((n, n), np.int8)
                        rows = min(n, ext - cb)
                        chunk[:rows, :cols.stop - cols.start] = w[cols, cb:cb + rows, kh, kw].T
                        words.append(chunk)
    return np.concatenate(words) if words else np.zeros((0, n), np.int8)


def build_program(export, cfg) -> Program:
    """Descriptors and memory images for ``export`` on an accelerator with ``cfg``."""
    n = cfg.rows
    G = export.groups
    descs, wparts, params = [], [], []
    w_base = p_base = 0
    src = SRC_IMAGE
    in_ch = export.convs[0].in_channels
    h = export.convs[0].in_size
    triangular = export.meta["connectivity"] == "block_lower_triangular" and G > 1
    layers = [(layer, KIND_CONV) for layer in export.convs]
    heads = list(export.heads.items())
    shared = export.meta["head"] == "shared"
    for i, (layer, kind) in enumerate(layers):
        dst = BUF_A if src != BUF_A else BUF_B
        d = dict(kind=kind, src=src, dst=dst, relu=layer.relu, pool=layer.pool,
                 triangular=triangular and i > 0, select_k=0, cin=in_ch, cout=layer.out_channels,
                 h=h, w=h, kernel=layer.kernel, stride=layer.stride, pad=layer.padding, groups=G,
                 w_base=w_base, p_base=p_base, src_base=0, dst_base=0)
        descs.append(d)
        w = pack_weights(layer.weight, d, n)
        wparts.append(w)
        params.append((layer.bias, layer.M, layer.S))
        w_base += len(w)
        p_base += -(-layer.out_channels // n)
        src, in_ch, h = dst, layer.out_channels, out_dims(d)[0]
    logits_desc = []
    for k, head in (heads[-1:] if shared else heads):
        # The shared head is one descriptor over all G groups (narrower widths read a prefix of
        # its chunks); the per-width head for k groups is a descriptor of its own with CIN = its
        # k groups and GROUPS = k, run only when the producer has k active groups (SELECT_K).
        d = dict(kind=KIND_CLASSIFIER, src=src, dst=DST_LOGITS, relu=False, pool=False, triangular=False,
                 select_k=0 if shared else k, cin=head.weight.shape[1], cout=head.out_channels, h=h, w=h,
                 kernel=head.kernel, stride=1, pad=0, groups=G if shared else k, w_base=w_base,
                 p_base=p_base, src_base=0, dst_base=0)
        w = pack_weights(head.weight, d, n)
        logits_desc.append(len(descs))
        descs.append(d)
        wparts.append(w)
        params.append((head.bias, head.M, head.S))
        w_base += len(w)
        p_base += -(-head.out_channels // n)
    if len(descs) > cfg.n_desc:
        raise ValueError(f"the network needs {len(descs)} descriptors; the accelerator has {cfg.n_desc}")
    weights = np.concatenate(wparts)
    if len(weights) > cfg.wgt_depth:
        raise ValueError(f"the weights need {len(weights)} words; the accelerator has {cfg.wgt_depth} "
                         f"(use a larger --array or wgt_depth)")
    entries = p_base
    bias = np.zeros((entries, n), np.int32)
    M = np.zeros((entries, n), np.int32)
    S = np.zeros((entries, n), np.int32)
    e = 0
    for b, m, s in params:
        for t in range(-(-len(b) // n)):
            sl = slice(t * n, min((t + 1) * n, len(b)))
            bias[e, :sl.stop - sl.start], M[e, :sl.stop - sl.start], S[e, :sl.stop - sl.start] = b[sl], m[sl], s[sl]
            e += 1
    return Program(cfg=cfg, descs=descs, weights=weights, bias=bias, M=M, S=S, n_convs=len(export.convs),
                   input_shift=export.input_shift, logits_desc=logits_desc)


def image_bytes(program: Program, image: np.ndarray) -> np.ndarray:
    """IMAGE window entries (int8 (entries, img_pack * C)) for one uint8 image (C, H, W): pixel
    p = y*W + x in entry p // img_pack, channel c at byte (p % img_pack) * C + c."""
    x = (image.astype(np.uint8) >> program.input_shift).astype(np.int8)
    return pack_pixels(x.transpose(1, 2, 0).reshape(-1, x.shape[0]), program.cfg.img_pack)


def pack_pixels(pixels: np.ndarray, pack: int) -> np.ndarray:
    """(pixels, C) rows -> (ceil(pixels / pack), pack * C) IMAGE entries, the last padded with 0."""
    n, c = pixels.shape
    out = np.zeros((-(-n // pack) * pack, c), pixels.dtype)
    out[:n] = pixels
    return np.ascontiguousarray(out.reshape(-1, pack * c))


def act_words(act: np.ndarray, n: int) -> np.ndarray:
    """int8 (C, H, W) activation -> activation memory words (tiles*H*W, N), channel tile major."""
    c, h, w = act.shape
    tiles = -(-c // n)
    padded = np.zeros((tiles * n, h, w), np.int8)
    padded[:c] = act
    return padded.reshape(tiles, n, h, w).transpose(0, 2, 3, 1).reshape(-1, n)


def pack_params(bias: np.ndarray, M: np.ndarray, S: np.ndarray, n: int) -> np.ndarray:
    """PARAMS window entries (uint8 (entries, 8n)) for per-output-channel bias/M/S: lane c of entry
    t is channel t*n + c: bias int32 at byte 8c, M uint16 at 8c+4, S uint8 at 8c+6."""
    entries = -(-len(bias) // n)
    out = np.zeros((entries, n, 8), np.uint8)
    flat = out.reshape(-1, 8)
    flat[:len(bias), 0:4] = np.asarray(bias, "<i4").view(np.uint8).reshape(-1, 4)
    flat[:len(bias), 4:6] = np.asarray(M, "<u2").view(np.uint8).reshape(-1, 2)
    flat[:len(bias), 6] = np.asarray(S, np.uint8)
    return out.reshape(entries, 8 * n)
