"""The fast exact model of the accelerator, behind the same 32-bit bus as the RTL.

``ModelBus`` answers ``read32``/``write32`` from the register map of ``hw/contract/regmap.py`` with real
memories. On START it executes the descriptors with the schedule of ``hw/contract/schedule.py``: every
chunk reads the weight words, parameter entries and activation words at the addresses the
sequencer uses, so its outputs come from memory contents exactly as on the RTL (NumPy,
vectorised per chunk), and its counters are the schedule's. So ``sw.driver.Driver`` runs
unchanged on it, on amaranth.sim and on cocotb.

What it does not predict: CYCLES (it includes the host's bus idle time, which depends on the
bus master) and the bus bytes of STATUS polls (their count depends on how long the hardware
takes to finish as seen by the host). Every datapath counter, BUSY_CYCLES, LAYER_CYCLES and all
other bus traffic are exact.
"""
from __future__ import annotations

import numpy as np

from hw.contract.regmap import COUNTERS, DESC_WORDS, Error, decode_descriptor, regmap
from hw.contract.schedule import (BUF_A, BUF_B, KIND_CLASSIFIER, SRC_IMAGE, geometry, out_dims, plan_run)
from model.golden import requantize

# The counters this model does not predict (module docstring): bus idle time and STATUS polls.
BUS_TIMED = ("CYCLES", "BUS_RD_BYTES")

_WINDOW_COUNTER = {"IMAGE": "IMG", "ACT_A": "ACTA", "ACT_B": "ACTB", "WEIGHTS": "WGT", "PARAMS": "PRM",
                   "LOGITS": "LOGIT"}


class ModelBus:
    """Register- and memory-level model of the accelerator (see the module docstring)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.map = regmap(cfg)
        n = cfg.rows
        self.mem = {w.name: np.zeros((w.depth, w.word_bytes), np.uint8) for w in self.map.windows}
        self.regs: dict[tuple[str, int], int] = {}
        for r in self.map.registers:
            for j in range(r.count):
                self.regs[(r.name, j)] = sum(f.reset << f.lsb for f in r.fields)
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.layer_cycles = [0] * cfg.n_desc
        self.status = dict(busy=0, done=0, error=0, code=0, layer=0)
        self.last_plan = None
        self._n = n

    # ------------------------------------------------------------------ bus
    async def read32(self, addr: int) -> int:
        return self.read32_now(addr)

    async def write32(self, addr: int, value: int) -> None:
        self.write32_now(addr, value)

    def read32_now(self, addr: int) -> int:
        self.counters["BUS_RD_BYTES"] += 4
        hit = self.map.lookup(addr)
        if hit is None:
            return 0
        if hit[0] == "window":
            _, w, entry, byte = hit
            self._count(w.name, "_RD")
            raw = self.mem[w.name][entry, byte:byte + 4]
            return int.from_bytes(raw.tobytes().ljust(4, b"\0"), "little")
        _, r, j = hit
        name = r.name
        if name == "STATUS":
            s = self.status
            f = {k: self.map.field("STATUS", k).lsb for k in ("BUSY", "DONE", "ERROR", "ERROR_CODE", "LAYER")}
            return (s["busy"] << f["BUSY"] | s["done"] << f["DONE"] | s["error"] << f["ERROR"] |
                    s["code"] << f["ERROR_CODE"] | s["layer"] << f["LAYER"])
        if name == "CTRL":
            return 0
        if name == "LAYER_CYCLES":
            return self.layer_cycles[j]
        for c in COUNTERS:
            if name == f"{c}_LO":
                return self.counters[c] & 0xFFFFFFFF
            if name == f"{c}_HI":
                return (self.counters[c] >> 32) & 0xFFFFFFFF
        return self.regs[(name, j)]

    def write32_now(self, addr: int, value: int) -> None:
        self.counters["BUS_WR_BYTES"] += 4
        hit = self.map.lookup(addr)
        if hit is None:
            return
        if hit[0] == "window":
            _, w, entry, byte = hit
            if w.access == "ro":
                return
            self._count(w.name, "_WR")
            word = self.mem[w.name][entry]
            nb = max(0, min(4, w.word_bytes - byte))
            word[byte:byte + nb] = np.frombuffer(int(value).to_bytes(4, "little"), np.uint8)[:nb]
            return
        _, r, j = hit
        if r.name == "CTRL":
            if value >> self.map.field("CTRL", "CLEAR_COUNTERS").lsb & 1:
                self.counters = dict.fromkeys(COUNTERS, 0)
            if value >> self.map.field("CTRL", "START").lsb & 1:
                self._start()
            return
        if all(f.access == "rw" for f in r.fields):
            mask = sum(((1 << f.width) - 1) << f.lsb for f in r.fields)
            self.regs[(r.name, j)] = value & mask

    def _count(self, window: str, suffix: str) -> None:
        prefix = _WINDOW_COUNTER.get(window)
        if prefix and prefix + suffix in self.counters:
            self.counters[prefix + suffix] += 1

    # ------------------------------------------------------------------ a run
    def _field(self, reg: str, j: int = 0) -> int:
        return self.regs[(reg, j)]

    def descriptors(self) -> list[dict]:
        out = []
        for j in range(self.cfg.n_desc):
            words = [self.regs[(f"DESC_W{i}", j)] for i in range(DESC_WORDS)]
            out.append(decode_descriptor(words))
        return out

    def _start(self) -> None:
        cfg = self.cfg
        first, num, width = self._field("FIRST_LAYER"), self._field("NUM_LAYERS"), self._field("WIDTH")
        chan = []
        for j in range(cfg.n_desc):
            v = self.regs[("CHAN", j)]
            chan.append(((v >> 8) & 0xFF, v & 0xFF))
        descs = self.descriptors()
        plan = plan_run(descs, chan, cfg, first, num, width)
        self.last_plan = plan
        self.status = dict(busy=0, done=1, error=int(plan.error != 0), code=int(plan.error),
                           layer=plan.error_layer if plan.error else (first + num) & 0xFF)
        for lp in plan.layers:
            if lp.error:
                break
            self.layer_cycles[lp.index] = lp.cycles
            if not lp.skipped:
                self._execute(descs[lp.index], lp)
        for k, v in plan.counters.items():
            self.counters[k] += v
        self.counters["CYCLES"] += plan.counters.get("BUSY_CYCLES", 0)

    def _execute(self, d: dict, lp) -> None:
        cfg, n = self.cfg, self._n
        K, s, p, H, W = d["kernel"], d["stride"], d["pad"], d["h"], d["w"]
        _, _, hc, wc = geometry(d)
        oh, ow = out_dims(d)
        wmem = self.mem["WEIGHTS"].view(np.int8)
        prm = self.mem["PARAMS"].reshape(-1, n, 8)
        bias = prm[:, :, 0:4].copy().view("<i4")[..., 0].astype(np.int64)
        M = prm[:, :, 4:6].copy().view("<u2")[..., 0].astype(np.int64)
        S = prm[:, :, 6].astype(np.int64)
        img = self.mem["IMAGE"].view(np.int8).reshape(-1, cfg.img_channels)  # one pixel per row
        src = None if d["src"] == SRC_IMAGE else self.mem[{BUF_A: "ACT_A", BUF_B: "ACT_B"}[d["src"]]].view(np.int8)
        acc = np.zeros((cfg.acc_depth, n), np.int64)
        cin = d["cin"]
        for ch in lp.chunks:
            y0 = ch.block * lp.block_rows
            rows_b = ch.pixels // wc
            ys = np.repeat(np.arange(y0, y0 + rows_b), wc)
            xs = np.tile(np.arange(wc), rows_b)
            X = np.zeros((ch.pixels, ch.rows), np.int64)
            if lp.tap_mode:
                for r in range(ch.rows):
                    kh, kw, c = ch.ch_base + r // (K * cin), (r // cin) % K, r % cin
                    yy, xx = ys * s + kh - p, xs * s + kw - p
                    ok = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
                    X[ok, r] = img[yy[ok] * W + xx[ok], c]
            else:
                yy, xx = ys * s + ch.kh - p, xs * s + ch.kw - p
                ok = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
                addr = d["src_base"] + ((ch.ch_base // n) * H + yy[ok]) * W + xx[ok]
                X[ok] = src[addr, :ch.rows]
            base = d["w_base"] + ch.wchunk * n
            Wt = wmem[base:base + ch.rows].astype(np.int64)
            Wt[:, ch.cols:] = 0
            e = d["p_base"] + ch.otile
            acc[:ch.pixels] = X @ Wt + (bias[e] if ch.first else acc[:ch.pixels])
            if not ch.last:
                continue
            if d["kind"] == KIND_CLASSIFIER:
                logits = self.mem["LOGITS"].view("<i4")[:, 0]
                lo = ch.otile * n
                logits[lo:lo + ch.cols] = acc[0, :ch.cols].astype(np.int32)
                continue
            y = requantize(acc[:ch.pixels], np.maximum(M[e], 1), np.minimum(S[e], 47), d["relu"])
            y[:, ch.cols:] = 0
            dst = self.mem[{BUF_A: "ACT_A", BUF_B: "ACT_B"}[d["dst"]]].view(np.int8)
            if d["pool"]:
                pooled = y.reshape(rows_b // 2, 2, wc // 2, 2, n).max(axis=(1, 3))
                for i in range(rows_b // 2):
                    a = d["dst_base"] + (ch.otile * oh + y0 // 2 + i) * ow
                    dst[a:a + wc // 2] = pooled[i]
            else:
                a = d["dst_base"] + (ch.otile * oh + y0) * ow
                dst[a:a + ch.pixels] = y

    @property
    def error(self):
        return Error(self.status["code"])
