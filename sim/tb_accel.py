"""cocotb tests of the whole accelerator (Verilog from ``hw.flow.gen``) on Verilator and Icarus.

The host driver ``sw.driver.Driver`` runs unchanged against the RTL: its ``read32``/``write32``
go through a cocotbext-axi ``AxiLiteMaster`` on the ``s_axil_*`` ports (hardware in the loop, no
hand-written bus driver). Every expected value comes from ``model.golden`` (outputs, logits) or
``hw.contract.schedule`` (cycle and event counters, error codes); the register expectations come from
``hw.contract.regmap``.

Parameters arrive through the environment (set by ``sim/conftest.py``; taxi style):
``PARAM_<FIELD>`` the ``ArrayConfig`` the Verilog was built with, ``TB_SEED``, ``TB_LAYERS``,
``TB_CLASSIFIERS``, ``TB_BUDGET`` (most cycles of one random layer), ``TB_IMAGES`` (test images per
width), ``TB_WIDTHS`` (their order), ``TB_MIXED`` (runs with per-layer group counts), ``TB_ONLY``
(one random layer), ``TB_POLL``, ``TB_PERF`` (a JSON-lines file for the measured speeds),
``TB_SIM`` and ``TB_NODE`` (for messages).

Every wait is bounded: runs wait on ``irq`` for at most twice the schedule's cycle count (then
``Driver.wait(max_polls=...)`` raises), and every test has a simulated-time timeout.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
import zlib
from dataclasses import dataclass, fields

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, First, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from hw.contract.params import ArrayConfig
from hw.contract.program import act_words, build_program, image_bytes, pack_params, pack_pixels, pack_weights
from hw.contract.regmap import COUNTERS, ID_VALUE, Error, encode_descriptor, regmap
from hw.contract.schedule import (BUF_A, BUF_B, DST_LOGITS, KIND_CLASSIFIER, KIND_CONV, SRC_IMAGE, check_layer,
                         out_dims, plan_layer, plan_run)
from model import golden
from model.export import Layer, load_export
from sw.driver import AcceleratorError, Driver
from sw.model_device import ModelBus
from sim.runner import CLK_NS

# cocotbext-axi 0.1.28 still uses cocotb 1.x APIs (Event.data, Task.kill) that cocotb 2 deprecates.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.axi\..*")

# Counters the bus moves as well (the rest are the datapath's, predicted by hw.contract.schedule).
BUS_COUNTERS = ("CYCLES", "BUS_RD_BYTES", "BUS_WR_BYTES")
DATAPATH_COUNTERS = tuple(c for c in COUNTERS if c not in BUS_COUNTERS)
ACT_WINDOW = {BUF_A: "ACT_A", BUF_B: "ACT_B"}
GUARD = 3  # words checked untouched on each side of a layer's output


# --------------------------------------------------------------------------------------------
# Parameters (environment)


def env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    return int(text, 0) if text else default


def env_config() -> ArrayConfig:
    """The ArrayConfig the runner built (PARAM_<FIELD>), default 8x8 when run by hand."""
    values = {}
    for f in fields(ArrayConfig):
        text = os.environ.get(f"PARAM_{f.name.upper()}")
        if text is not None:
            values[f.name] = int(text)
    return ArrayConfig(**values)


SEED = env_int("TB_SEED", 1)
LAYERS = env_int("TB_LAYERS", 8)
CLASSIFIERS = env_int("TB_CLASSIFIERS", 2)
BUDGET = env_int("TB_BUDGET", 4000)
IMAGES = env_int("TB_IMAGES", 1)
WIDTHS = [int(w) for w in os.environ.get("TB_WIDTHS", "4,1,3,2").split(",") if w.strip()]
ONLY = env_int("TB_ONLY", -1)
POLL = os.environ.get("TB_POLL", "0") == "1"
SIM = os.environ.get("TB_SIM", "?")
# Simulated-time limits (1 ms = 100k cycles). Generous: they catch hangs, not slowness.
_BUS_CYCLES_PER_LAYER = 100_000
TIMEOUT_RANDOM_MS = math.ceil(2 + (LAYERS + CLASSIFIERS) * (3 * BUDGET + _BUS_CYCLES_PER_LAYER) * CLK_NS / 1e6)
MIXED = env_int("TB_MIXED", 2)
TIMEOUT_NETWORK_MS = math.ceil(20 + (len(WIDTHS) * IMAGES + MIXED) * 3 * 250_000 * CLK_NS / 1e6)


def rng_for(*tags) -> np.random.Generator:
    """A generator per (seed, tags): random layer i is reproducible on its own (LAYER=i)."""
    return np.random.default_rng([SEED] + [zlib.crc32(str(t).encode()) for t in tags])


# --------------------------------------------------------------------------------------------
# Bus adapter and testbench


class BusError(AssertionError):
    """The AXI4-Lite slave answered something other than OKAY."""


class AxiLiteAdapter:
    """``read32``/``write32`` for :class:`sw.driver.Driver`, through a cocotbext-axi master.

    Every access must answer OKAY (else :class:`BusError`); ``read_raw``/``write_raw`` return the
    response for the tests that expect SLVERR/DECERR. Counts completed transactions (the bus
    traffic counters are checked against them)."""

    def __init__(self, master: AxiLiteMaster):
        self.master = master
        self.reads = self.writes = self.wr_bytes = 0
        self.mirror = None  # a sw.model_device.ModelBus that sees every write32 too (TB(mirror=True))

    async def read_raw(self, addr: int) -> tuple[int, int]:
        r = await self.master.read(addr, 4)
        self.reads += 1
        return int.from_bytes(r.data, "little"), int(r.resp)

    async def write_raw(self, addr: int, data: bytes) -> int:
        """One beat: ``data`` (1..4 bytes) must not cross a 32-bit word."""
        assert 1 <= len(data) <= 4 - addr % 4, "write_raw is a single AXI4-Lite beat"
        r = await self.master.write(addr, data)
        self.writes += 1
        self.wr_bytes += len(data)  # WSTRB bits set
        return int(r.resp)

    async def read32(self, addr: int) -> int:
        data, resp = await self.read_raw(addr)
        if resp != AxiResp.OKAY:
            raise BusError(f"read of {addr:#07x} answered {AxiResp(resp).name}")
        return data

    async def write32(self, addr: int, value: int) -> None:
        resp = await self.write_raw(addr, int(value & 0xFFFF_FFFF).to_bytes(4, "little"))
        if resp != AxiResp.OKAY:
            raise BusError(f"write of {int(value) & 0xFFFF_FFFF:#010x} to {addr:#07x} answered {AxiResp(resp).name}")
        if self.mirror is not None:
            self.mirror.write32_now(addr, value)


class TB:
    """Clock, reset, the AXI4-Lite master and the host driver on top of it.

    ``mirror=True``: the host's model backend (``sw.model_device.ModelBus``) receives every
    register and memory write as well, and :meth:`check_mirror` compares its status, counters,
    LAYER_CYCLES and memories with the RTL's after a run: the model backend is tested on every
    layer the RTL runs."""

    def __init__(self, dut, mirror: bool = False):
        self.dut = dut
        self.cfg = env_config()
        self.map = regmap(self.cfg)
        self.n = self.cfg.rows
        dut.rst.value = 1  # before the master samples it (X would not convert to bool)
        for name in ("awvalid", "wvalid", "arvalid", "bready", "rready"):
            getattr(dut, f"s_axil_{name}").value = 0
        Clock(dut.clk, CLK_NS, unit="ns").start()
        # cocotbext-axi logs every transaction (and each channel's reset) at INFO
        logging.getLogger(f"cocotb.{dut._name}.s_axil").setLevel(logging.WARNING)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.bus = AxiLiteAdapter(self.axil)
        self.drv = Driver(self.bus, self.cfg)
        self.use_mirror = mirror

    async def reset(self, cycles: int = 4) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)
        self.bus.reads = self.bus.writes = self.bus.wr_bytes = 0
        if self.use_mirror:
            self.bus.mirror = ModelBus(self.cfg)  # a reset device: registers and memories as after rst

    @property
    def model(self) -> ModelBus | None:
        return self.bus.mirror

    def check_mirror(self, what: str, status: dict, counters: dict, layer_cycles: dict | None = None,
                     memories=()) -> None:
        """The model backend agrees with the RTL on this run: STATUS, every counter the model
        predicts (all but CYCLES and BUS_RD_BYTES, which depend on the host's bus timing and
        reads), ``layer_cycles`` {descriptor: RTL value} and ``memories`` [(window, first, RTL
        entries)]."""
        m = self.model
        if m is None:
            return
        ms = dict(m.status)
        got = dict(busy=status["busy"], done=status["done"], error=status["error"], code=status["error_code"],
                   layer=status["layer"])
        assert ms == got, f"{what}: model backend STATUS {ms}, RTL {got}"
        if m.last_plan is not None and not m.last_plan.counters_exact:
            return  # a run-time weight overflow in a later chunk: hw.contract.schedule documents it unmodelled
        bad = [f"{k}: model {m.counters[k]}, RTL {counters[k]}" for k in DATAPATH_COUNTERS + ("BUS_WR_BYTES",)
               if m.counters[k] != counters[k]]
        assert not bad, f"{what}: model backend counters differ from the RTL: " + "; ".join(bad)
        for j, v in (layer_cycles or {}).items():
            assert m.layer_cycles[j] == v, f"{what}: model backend LAYER_CYCLES[{j}] {m.layer_cycles[j]}, RTL {v}"
        for window, first, entries in memories:
            mem = m.mem[window][first:first + len(entries)]
            raw = np.ascontiguousarray(entries).view(np.uint8).reshape(mem.shape)
            if not np.array_equal(mem, raw):
                bad = np.argwhere(mem != raw)
                raise AssertionError(f"{what}: model backend {window} differs from the RTL in {len(bad)} bytes, "
                                     f"first at entry {first + int(bad[0][0])}")

    async def check_identity(self) -> None:
        """The RTL is the configuration the test believes (ID, GEOMETRY, depths, limits)."""
        cfg, m = self.cfg, self.map
        assert await self.drv.read_reg("ID") == ID_VALUE, "ID register"
        geo = m.reg("GEOMETRY").decode(await self.drv.read_reg("GEOMETRY"))
        want = dict(ROWS=cfg.rows, COLS=cfg.cols, IMG_CHANNELS=cfg.img_channels, N_DESC=cfg.n_desc)
        assert geo == want, f"GEOMETRY {geo}, the test was built for {want}"
        for reg, value in (("DEPTH_ACT", cfg.act_depth), ("DEPTH_WGT", cfg.wgt_depth), ("DEPTH_ACC", cfg.acc_depth),
                           ("DEPTH_PRM", cfg.prm_depth), ("DEPTH_IMG", cfg.img_depth)):
            assert await self.drv.read_reg(reg) == value, f"{reg} != {value}"
        lim = m.reg("LIMITS").decode(await self.drv.read_reg("LIMITS"))
        want = dict(LINE_DEPTH=cfg.line_depth, MAX_CLASSES=cfg.max_classes, MAX_KERNEL=cfg.max_kernel,
                    MAX_GROUPS=cfg.max_groups)
        assert lim == want, f"LIMITS {lim}, the test was built for {want}"

    def now_ns(self) -> float:
        return get_sim_time("ns")

    async def write_descriptor(self, j: int, d: dict) -> None:
        for i, word in enumerate(encode_descriptor(d)):
            await self.bus.write32(self.map.desc_offset(j, i), word)

    async def set_chan(self, j: int, gi: int, go: int) -> None:
        await self.drv.write_reg("CHAN", (gi << 8) | go, j)

    async def run(self, first: int, num: int, cycles: int | None = None) -> dict:
        """START, then a bounded wait for DONE: sleep on ``irq`` (STATUS.DONE, as an interrupt-
        driven host would) for at most ``2 * cycles + 2000`` cycles, then read STATUS through the
        driver (``Driver.wait`` raises if DONE is still not set). ``POLL=1``: poll only."""
        limit = 2 * (cycles if cycles is not None else BUDGET) + 2000
        await self.drv.start(first, num)
        if POLL:
            return await self.drv.wait(max_polls=limit // 4 + 64)
        await ClockCycles(self.dut.clk, 2)  # START has reached the sequencer: DONE cleared or error set
        if str(self.dut.irq.value) != "1":
            await First(RisingEdge(self.dut.irq), ClockCycles(self.dut.clk, limit))
        return await self.drv.wait(max_polls=64)

    def perf(self, **record) -> None:
        path = os.environ.get("TB_PERF")
        if path:
            record.update(sim=SIM, array=f"{self.cfg.rows}x{self.cfg.cols}", seed=SEED, time=time.time())
            with open(path, "a") as f:
                f.write(json.dumps(record) + "\n")


def check_counters(got: dict, plan_counters: dict, what: str) -> None:
    """Every datapath counter equals hw.contract.schedule's (absent there = 0); CYCLES covers BUSY."""
    bad = [f"{name}: RTL {got[name]}, schedule {plan_counters.get(name, 0)}"
           for name in DATAPATH_COUNTERS if got[name] != plan_counters.get(name, 0)]
    assert not bad, f"{what}: counters differ from hw.contract.schedule: " + "; ".join(bad)
    assert got["CYCLES"] >= got["BUSY_CYCLES"], f"{what}: CYCLES {got['CYCLES']} < BUSY_CYCLES {got['BUSY_CYCLES']}"


# --------------------------------------------------------------------------------------------
# Random layers


@dataclass
class Case:
    """One random layer: descriptor, CHAN/WIDTH setting, data and the golden result."""

    label: str
    desc: dict
    slot: int  # descriptor index it runs from
    gi: int
    go: int
    width: int  # > 0: set through WIDTH (gi == go == width), 0: through CHAN[slot]
    x: np.ndarray  # int8 (cin, H, W): every input channel, the inactive ones too
    w: np.ndarray  # int8 (cout, cin, K, K)
    b: np.ndarray
    M: np.ndarray
    S: np.ndarray
    n_in: int
    n_out: int
    expected: np.ndarray  # conv: int8 output words (act_words); classifier: int32 logits
    plan: object

    def describe(self) -> str:
        d = self.desc
        return (f"{self.label} (SEED={SEED}): slot {self.slot}, kind {d['kind']} src {d['src']} dst {d['dst']} "
                f"cin {d['cin']} cout {d['cout']} G {d['groups']} in/out groups {self.gi}/{self.go} "
                f"({'WIDTH' if self.width else 'CHAN'}) n_in {self.n_in} n_out {self.n_out} HxW {d['h']}x{d['w']} "
                f"K {d['kernel']} stride {d['stride']} pad {d['pad']} relu {d['relu']} pool {d['pool']} "
                f"tri {d['triangular']} select_k {d['select_k']} bases w {d['w_base']} p {d['p_base']} "
                f"src {d['src_base']} dst {d['dst_base']}; M {sorted(set(self.M[:self.n_out].tolist()))[:6]} "
                f"S {sorted(set(self.S[:self.n_out].tolist()))}")


def _int8(rng, shape) -> np.ndarray:
    style = rng.random()
    if style < 0.1:  # only the extremes
        return rng.choice(np.array([-128, 127], np.int8), size=shape)
    if style < 0.2:  # mostly zero
        v = rng.integers(-128, 128, size=shape).astype(np.int8)
        v[rng.random(shape) < 0.8] = 0
        return v
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def _requant_params(rng, acc: np.ndarray, cout: int, n_out: int):
    """M, S per channel: extremes (M 1 / 65535, S 0 / 47) mixed with values that bring the
    accumulators of ``acc`` (1, n_out, ...) near the int8 range."""
    M = rng.integers(1, 1 << 16, size=cout)
    r = rng.random(cout)
    M[r < 0.12] = 1
    M[(r >= 0.12) & (r < 0.24)] = (1 << 16) - 1
    amax = np.abs(acc.astype(np.int64)).reshape(acc.shape[1], -1).max(axis=1) if acc.size else np.zeros(0)
    S = rng.integers(0, 48, size=cout)
    for o in range(n_out):
        target = float(amax[o]) * float(M[o]) / 127.0 + 1.0
        S[o] = int(np.clip(np.ceil(np.log2(target)) + rng.integers(-3, 2), 0, 47))
    r = rng.random(cout)
    S[r < 0.08] = 0
    S[(r >= 0.08) & (r < 0.16)] = 47
    return M.astype(np.int32), S.astype(np.int32)


def _bias(rng, n: int) -> np.ndarray:
    bits = int(rng.choice([2, 8, 14, 20, 24]))
    return rng.integers(-(1 << bits), 1 << bits, size=n).astype(np.int32)


def _bases(rng, d: dict, cfg, n: int, weight_words: int, src_words: int, dst_words: int) -> None:
    """Random base addresses that keep the layer inside every buffer (0 half of the time)."""
    def pick(room):
        return int(rng.integers(0, room + 1)) if room > 0 and rng.random() < 0.5 else 0
    d["w_base"] = pick(cfg.wgt_depth - weight_words)
    d["p_base"] = pick(cfg.prm_depth - -(-d["cout"] // n))
    d["src_base"] = pick(cfg.act_depth - src_words) if d["src"] != SRC_IMAGE else 0
    d["dst_base"] = pick(cfg.act_depth - GUARD - dst_words) if d["dst"] != DST_LOGITS else 0


def gen_conv(rng, cfg, budget: int, label: str, slot: int | None = None) -> Case:
    """A random convolution that runs (hw.contract.schedule says no error) within ``budget`` cycles."""
    n = cfg.rows
    kernels = [k for k in (1, 3, 5, 7) if k <= cfg.max_kernel]
    groups = [g for g in (1, 1, 2, 3, 4, 5, 7, 15) if g <= cfg.max_groups]
    for _ in range(5000):
        src = int(rng.choice([SRC_IMAGE, BUF_A, BUF_B], p=[0.25, 0.5, 0.25]))
        image = src == SRC_IMAGE
        dst = BUF_B if src == BUF_A else BUF_A if src == BUF_B else int(rng.choice([BUF_A, BUF_B]))
        # Large maps (more output pixels than the accumulators hold: several pixel blocks) get
        # small kernels and few channels so that they stay within the cycle budget.
        large = rng.random() < 0.2
        K = int(rng.choice([k for k in kernels if k <= 3] if large else kernels))
        G = int(rng.choice(groups))
        span = max(1, ((n if large else 3 * n)) // G)  # up to ~3 channel tiles (1 for large maps)
        cin = int(rng.choice(sorted({1, cfg.img_channels}))) if image else G * int(rng.integers(1, span + 1))
        cout = G * int(rng.integers(1, span + 1))
        if image and cin * K > n:
            continue
        use_width = rng.random() < 0.2
        go = int(rng.integers(1, G + 1))
        gi = go if use_width else int(rng.integers(1, G + 1))
        s, p = int(rng.choice([1, 2])), int(rng.integers(0, K // 2 + 1))
        lo, hi = (17, 28) if large else (5, 12)
        H, W = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
        d = dict(kind=KIND_CONV, src=src, dst=dst, relu=int(rng.random() < 0.5), pool=int(rng.random() < 0.4),
                 triangular=int(not image and G > 1 and rng.random() < 0.5), select_k=0, cin=cin, cout=cout,
                 h=H, w=W, kernel=K, stride=s, pad=p, groups=G, w_base=0, p_base=0, src_base=0, dst_base=0)
        if check_layer(d, cfg, gi, go, None):
            continue
        oh, ow = out_dims(d)
        wwords = len(pack_weights(np.zeros((cout, cin, K, K), np.int8), d, n))
        if wwords > cfg.wgt_depth:
            continue
        _bases(rng, d, cfg, n, wwords, -(-cin // n) * H * W, -(-cout // n) * oh * ow)
        j = int(rng.integers(0, cfg.n_desc)) if slot is None else slot
        plan = plan_layer(j, d, cfg, gi, go)
        if plan.error or plan.cycles > budget:
            continue
        break
    else:
        raise RuntimeError(f"{label}: no random layer fits a budget of {budget} cycles")
    n_in = cin if image else gi * (cin // G)
    n_out = go * (cout // G)
    x = _int8(rng, (cin, H, W))
    w = _int8(rng, (cout, cin, K, K))
    if d["triangular"]:  # output group g reads input groups 0..g only
        og = np.arange(cout) // (cout // G)
        ig = np.arange(cin) // (cin // G)
        w[og[:, None] < ig[None, :]] = 0
    b = _bias(rng, cout)
    acc = golden.conv_acc(x[None, :n_in], w[:n_out, :n_in], b[:n_out], s, p)
    M, S = _requant_params(rng, acc, cout, n_out)
    layer = Layer(name=label, kind="conv", in_channels=cin, out_channels=cout, kernel=K, stride=s, padding=p,
                  relu=bool(d["relu"]), pool=bool(d["pool"]), in_size=H, weight=w, bias=b, M=M, S=S)
    y = golden.layer_forward(x[None, :n_in], layer, n_out)[0]
    return Case(label, d, j, gi, go, go if use_width else 0, x, w, b, M, S, n_in, n_out, act_words(y, n), plan)


def gen_classifier(rng, cfg, budget: int, label: str) -> Case:
    """A random classifier (kind 2: raw int32 logits of a conv whose output is 1x1)."""
    n = cfg.rows
    kernels = [k for k in (1, 3, 5, 7) if k <= cfg.max_kernel]
    for _ in range(5000):
        G = int(rng.choice([1, 2, 3, 4]))
        cin = G * int(rng.integers(1, max(1, (3 * n) // G) + 1))
        gi = int(rng.integers(1, G + 1))
        use_width = rng.random() < 0.2
        K, s = int(rng.choice(kernels)), int(rng.choice([1, 2]))
        p = int(rng.integers(0, K // 2 + 1))
        H = int(rng.integers(K - 2 * p, K - 2 * p + s))  # (H + 2p - K) // s + 1 == 1
        W = int(rng.integers(K - 2 * p, K - 2 * p + s))
        cout = int(rng.integers(1, cfg.max_classes + 1))
        r = rng.random()
        select_k = 0 if r < 0.6 else gi if r < 0.8 else int(rng.choice([k for k in range(1, 16) if k != gi]))
        src = int(rng.choice([BUF_A, BUF_B]))
        d = dict(kind=KIND_CLASSIFIER, src=src, dst=DST_LOGITS, relu=0, pool=0, triangular=0, select_k=select_k,
                 cin=cin, cout=cout, h=H, w=W, kernel=K, stride=s, pad=p, groups=G, w_base=0, p_base=0,
                 src_base=0, dst_base=0)
        if check_layer(d, cfg, gi, 0, None):
            continue
        wwords = len(pack_weights(np.zeros((cout, cin, K, K), np.int8), d, n))
        _bases(rng, d, cfg, n, wwords, -(-cin // n) * H * W, 0)
        j = int(rng.integers(0, cfg.n_desc))
        plan = plan_layer(j, d, cfg, gi, 0)
        if plan.error or plan.cycles > budget:
            continue
        break
    else:
        raise RuntimeError(f"{label}: no random classifier fits a budget of {budget} cycles")
    n_in = gi * (cin // G)
    x = _int8(rng, (cin, H, W))
    w = _int8(rng, (cout, cin, K, K))
    b = _bias(rng, cout)
    M, S = rng.integers(1, 1 << 16, size=cout).astype(np.int32), rng.integers(0, 48, size=cout).astype(np.int32)
    layer = Layer(name=label, kind="classifier", in_channels=cin, out_channels=cout, kernel=K, stride=s, padding=p,
                  relu=False, pool=False, in_size=H, weight=w, bias=b, M=M, S=S)
    logits = golden.layer_forward(x[None, :n_in], layer, cout).reshape(-1).astype(np.int32)
    return Case(label, d, j, gi, 0, gi if use_width else 0, x, w, b, M, S, n_in, cout, logits, plan)


async def load_case(tb: TB, case: Case, rng, reload: bool = True) -> tuple[int, np.ndarray]:
    """Weights, parameters and input of ``case`` (unless ``reload`` is False: they are still in
    the buffers), its descriptor and CHAN/WIDTH into the RTL; the output region of a conv (with
    GUARD words on each side) is filled with fresh random bytes. Returns (first word of that
    region, its contents)."""
    drv, d, cfg, n = tb.drv, case.desc, tb.cfg, tb.n
    if reload:
        await drv.write_window("WEIGHTS", pack_weights(case.w, d, n).view(np.uint8), first=d["w_base"])
        await drv.write_window("PARAMS", pack_params(case.b, case.M, case.S, n), first=d["p_base"])
        if d["src"] == SRC_IMAGE:
            cin, H, W = case.x.shape
            entries = rng.integers(-128, 128, size=(H * W, cfg.img_channels)).astype(np.int8)  # unused bytes: noise
            entries[:, :cin] = case.x.transpose(1, 2, 0).reshape(-1, cin)
            await drv.write_window("IMAGE", pack_pixels(entries, cfg.img_pack))
        else:
            await drv.write_window(ACT_WINDOW[d["src"]], act_words(case.x, n), first=d["src_base"])
    lo, noise = 0, np.zeros((0, n), np.int8)
    if d["dst"] != DST_LOGITS:
        lo = max(0, d["dst_base"] - GUARD)
        hi = min(cfg.act_depth, d["dst_base"] + len(case.expected) + GUARD)
        noise = rng.integers(-128, 128, size=(hi - lo, n)).astype(np.int8)
        await drv.write_window(ACT_WINDOW[d["dst"]], noise, first=lo)
    await tb.write_descriptor(case.slot, d)
    if case.width:
        await drv.set_width(case.width)
    else:
        await drv.write_reg("WIDTH", 0)
        await tb.set_chan(case.slot, case.gi, case.go)
    return lo, noise


async def run_case(tb: TB, case: Case, rng, reload: bool = True) -> None:
    """Load, run from one START, and compare everything with the golden model and hw.contract.schedule."""
    drv, d, n = tb.drv, case.desc, tb.n
    what = case.describe()
    lo, noise = await load_case(tb, case, rng, reload)
    logits_before = await drv.read_logits(tb.cfg.max_classes) if d["dst"] == DST_LOGITS else None
    await drv.clear_counters()
    st = await tb.run(case.slot, 1, case.plan.cycles)
    counters = await drv.read_counters()  # before any window read adds buffer traffic
    cycles = await drv.read_reg("LAYER_CYCLES", case.slot)
    assert st["done"] == 1 and st["error"] == 0 and st["busy"] == 0, \
        f"{what}: status {st} (error {Error(st['error_code']).name})"
    assert cycles == case.plan.cycles, f"{what}: LAYER_CYCLES {cycles}, schedule {case.plan.cycles}"
    check_counters(counters, case.plan.counters, what)
    if d["dst"] == DST_LOGITS:
        got = await drv.read_logits(tb.cfg.max_classes)
        tb.check_mirror(what, st, counters, {case.slot: cycles}, [("LOGITS", 0, got.view(np.uint8).reshape(-1, 4))])
        want = logits_before.copy()
        if not case.plan.skipped:
            want[:case.n_out] = case.expected
        assert np.array_equal(got, want), (
            f"{what}: logits {got.tolist()}, expected {want.tolist()}" + (" (skipped head must not write)"
                                                                          if case.plan.skipped else ""))
        return
    got = (await drv.read_window(ACT_WINDOW[d["dst"]], len(noise), first=lo)).view(np.int8)
    tb.check_mirror(what, st, counters, {case.slot: cycles}, [(ACT_WINDOW[d["dst"]], lo, got)])
    k0 = d["dst_base"] - lo
    out = got[k0:k0 + len(case.expected)]
    if not np.array_equal(out, case.expected):
        bad = np.argwhere(out != case.expected)
        oh, ow = out_dims(d)
        word, lane = (int(v) for v in bad[0])
        t, rest = divmod(word, oh * ow)
        msg = (f"{what}: {len(bad)} output bytes differ; first at word {word} (o-tile {t}, y {rest // ow}, "
               f"x {rest % ow}) channel {t * n + lane}: RTL {int(out[word, lane])}, golden "
               f"{int(case.expected[word, lane])}")
        raise AssertionError(msg)
    guards = np.concatenate([got[:k0], got[k0 + len(case.expected):]])
    wguard = np.concatenate([noise[:k0], noise[k0 + len(case.expected):]])
    assert np.array_equal(guards, wguard), f"{what}: words next to the output region were overwritten"


async def random_layers(dut, conv_count: int, cls_count: int, tag: str) -> None:
    tb = TB(dut, mirror=True)
    await tb.reset()
    await tb.check_identity()
    labels = [("conv", i) for i in range(conv_count)] + [("classifier", i) for i in range(cls_count)]
    if ONLY >= 0:
        labels = [lab for lab in labels if lab[1] == ONLY]
        assert labels, f"LAYER={ONLY} is beyond this test's {conv_count} layers / {cls_count} classifiers"
    failures, stats = [], {}
    t0, cycles0 = time.time(), tb.now_ns()
    for count, (kind, i) in enumerate(labels, 1):
        rng = rng_for(tag, kind, i)
        label = f"{kind} layer {i}"
        case = (gen_conv if kind == "conv" else gen_classifier)(rng, tb.cfg, BUDGET, label)
        d = case.desc
        for key in (f"K{d['kernel']}", f"stride{d['stride']}", f"pad{d['pad']}", f"G{d['groups']}",
                    "pool" if d["pool"] else None, "relu" if d["relu"] else None, "tri" if d["triangular"] else None,
                    "image" if d["src"] == SRC_IMAGE else None, "width-reg" if case.width else None,
                    "odd-cin" if d["cin"] % 2 else None, "odd-cout" if d["cout"] % 2 else None,
                    "multi-block" if len({c.block for c in case.plan.chunks}) > 1 else None,
                    "skipped" if case.plan.skipped else None, "M=1" if (case.M[:case.n_out] == 1).any() else None,
                    "M=65535" if (case.M[:case.n_out] == 65535).any() else None,
                    "S=0" if (case.S[:case.n_out] == 0).any() and kind == "conv" else None,
                    "S=47" if (case.S[:case.n_out] == 47).any() and kind == "conv" else None):
            if key:
                stats[key] = stats.get(key, 0) + 1
        try:
            await run_case(tb, case, rng)
        except (AssertionError, AcceleratorError) as e:
            failures.append(f"[{label}] {e}  -- reproduce: SEED={SEED} LAYER={i} .venv/bin/python -m pytest -m '' "
                            f"'{os.environ.get('TB_NODE', 'sim/test_accel.py')}'")
            dut._log.error("FAIL %s", failures[-1])
            await tb.reset()  # a failed run may leave the sequencer anywhere: start clean
        stats["cycles"] = stats.get("cycles", 0) + case.plan.cycles
        if count % 100 == 0:
            dut._log.info("%d of %d random layers run, %d failed, %.0f s", count, len(labels), len(failures),
                          time.time() - t0)
    wall = time.time() - t0
    stats.update(layers=len(labels), failed=len(failures), wall_s=round(wall, 1),
                 sim_cycles=int((tb.now_ns() - cycles0) / CLK_NS))
    dut._log.info("random layers (SEED=%d): %s", SEED, json.dumps(stats, sort_keys=True))
    tb.perf(kind=f"random_layers_{tag}", **stats)
    assert not failures, f"{len(failures)} of {len(labels)} random layers failed (SEED={SEED}):\n" + "\n".join(failures[:10])


@cocotb.test(timeout_time=TIMEOUT_RANDOM_MS, timeout_unit="ms")
async def random_conv_layers(dut):
    """TB_LAYERS random convolutions and TB_CLASSIFIERS random classifiers, each from one START:
    output words bit-exact against model.golden.layer_forward, every counter and LAYER_CYCLES
    equal to hw.contract.schedule.plan_layer."""
    await random_layers(dut, LAYERS, CLASSIFIERS, "random")


# --------------------------------------------------------------------------------------------
# Register map


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def register_map(dut):
    """Reset values of every register, rw read-back (masked to the fields), ro registers ignore
    writes, CTRL pulses read 0, WSTRB merges, unmapped addresses DECERR, window round trips."""
    tb = TB(dut)
    await tb.reset()
    m, bus, rng = tb.map, tb.bus, rng_for("regmap")
    elements = [(reg, j, off) for reg in m.registers for j, off in enumerate(reg.offsets)]

    last_cycles = [0]

    async def read_check(reg, j, off, when: str) -> None:
        """Read one register element: the bus-driven counters against the transactions done so
        far (a read latches its data before its own R beat counts), the rest against reset."""
        reads, wr_bytes = bus.reads, bus.wr_bytes
        v = await bus.read32(off)
        if reg.name == "CYCLES_LO":
            assert v > last_cycles[0], f"{when}: CYCLES_LO {v} did not advance from {last_cycles[0]}"
            last_cycles[0] = v
        elif reg.name == "BUS_RD_BYTES_LO":
            assert v == 4 * reads, f"{when}: BUS_RD_BYTES_LO {v}, {reads} reads completed since reset"
        elif reg.name == "BUS_WR_BYTES_LO":
            assert v == wr_bytes, f"{when}: BUS_WR_BYTES_LO {v}, {wr_bytes} WSTRB bytes written since reset"
        else:
            assert v == reg.reset, (f"{when}: {reg.name}[{j}] at {off:#05x} reads {v:#010x}, "
                                    f"regmap reset value {reg.reset:#010x}")

    # 1. reset values
    for reg, j, off in elements:
        await read_check(reg, j, off, "after reset")
    await tb.check_identity()

    # 2. rw registers: random words (bits outside the fields read 0); all written, then all read,
    #    so an aliased address shows up
    rw = [(reg, j, off) for reg, j, off in elements if reg.access == "rw"]
    want = {}
    for reg, j, off in rw:
        value = int(rng.integers(0, 1 << 32))
        await bus.write32(off, value)
        want[off] = value & reg.mask
    for reg, j, off in rw:
        v = await bus.read32(off)
        assert v == want[off], f"{reg.name}[{j}] at {off:#05x}: wrote {want[off]:#010x} (masked), read {v:#010x}"
    #    byte strobes: a single-byte write changes only that byte
    for reg, j, off in [rw[int(k)] for k in rng.choice(len(rw), size=min(12, len(rw)), replace=False)]:
        lane = int(rng.integers(0, 4))
        byte = int(rng.integers(0, 256))
        assert await bus.write_raw(off + lane, bytes([byte])) == AxiResp.OKAY
        want[off] = ((want[off] & ~(0xFF << (8 * lane))) | (byte << (8 * lane))) & reg.mask
        v = await bus.read32(off)
        assert v == want[off], f"{reg.name}[{j}] byte {lane} write {byte:#04x}: read {v:#010x}, want {want[off]:#010x}"
    for reg, j, off in rw:  # back to reset values for what follows
        await bus.write32(off, reg.reset)

    # 3. read-only registers ignore writes (and answer OKAY)
    for reg, j, off in elements:
        if reg.access == "ro":
            await bus.write32(off, int(rng.integers(1, 1 << 32)))
            await read_check(reg, j, off, f"after a write to read-only {reg.name}[{j}]")

    # 4. CTRL (w1 pulses): reads 0; CLEAR_COUNTERS zeroes the counters
    clear = 1 << m.field("CTRL", "CLEAR_COUNTERS").lsb
    for _ in range(4):
        reserved = int(rng.integers(0, 1 << 32)) & ~m.reg("CTRL").mask
        await bus.write32(m.offset("CTRL"), clear | reserved)
        rd = await bus.read32(m.offset("BUS_RD_BYTES_LO"))
        assert rd == 0, f"BUS_RD_BYTES_LO {rd} right after CLEAR_COUNTERS (no read completed since)"
        cyc = await bus.read32(m.offset("CYCLES_LO"))
        assert 0 < cyc < 64, f"CYCLES_LO {cyc} a few cycles after CLEAR_COUNTERS"
        assert await bus.read32(m.offset("CTRL")) == 0, "CTRL must read 0"
    status = await bus.read32(m.offset("STATUS"))
    assert status == m.reg("STATUS").reset, f"STATUS {status:#x} changed by CLEAR_COUNTERS"

    # 5. unmapped addresses: DECERR, read data 0
    cands = {(1 << tb.cfg.addr_bits) - 4, 0x034, 0x03C}
    for r in m.registers:
        cands |= {r.offset - 4, r.offset + r.count * r.stride}
    for w in m.windows:
        cands |= {w.base - 4, w.end}
    cands |= {int(a) & ~3 for a in rng.integers(0, 1 << tb.cfg.addr_bits, size=20)}
    unmapped = sorted(a for a in cands if 0 <= a < (1 << tb.cfg.addr_bits) and m.lookup(a) is None)
    assert len(unmapped) > 10
    for a in unmapped:
        assert await bus.write_raw(a, b"\xa5\x5a\xa5\x5a") == AxiResp.DECERR, f"write to unmapped {a:#07x}"
        assert await bus.read_raw(a) == (0, AxiResp.DECERR), f"read of unmapped {a:#07x}"

    # 6. windows: random entries round-trip; LOGITS is read-only (0 after reset); bytes past an
    #    entry's word read 0
    for w in m.windows:
        entries = sorted({0, w.depth - 1} | {int(e) for e in rng.integers(0, w.depth, size=6)})
        data = rng.integers(0, 256, size=(len(entries), w.word_bytes)).astype(np.uint8)
        for e, row in zip(entries, data):
            await tb.drv.write_window(w.name, row[None], first=e)
        for e, row in zip(entries, data):
            got = (await tb.drv.read_window(w.name, 1, first=e))[0]
            want_row = row if w.access == "rw" else np.zeros_like(row)
            assert np.array_equal(got, want_row), f"window {w.name} entry {e}: wrote {row.tolist()}, read {got.tolist()}"
            if w.stride > w.word_bytes and w.word_bytes % 4:
                raw = await bus.read32(w.address(e, w.word_bytes & ~3))
                assert raw >> (8 * (w.word_bytes % 4)) == 0, f"{w.name} entry {e}: bytes past the word read {raw:#x}"
        if w.access == "rw":  # WSTRB on a window: one byte of one entry
            e, b = entries[0], int(rng.integers(0, w.word_bytes))
            assert await bus.write_raw(w.address(e, b), bytes([0x5A])) == AxiResp.OKAY
            got = (await tb.drv.read_window(w.name, 1, first=e))[0]
            row = data[0].copy()
            row[b] = 0x5A
            assert np.array_equal(got, row), f"window {w.name} entry {e}: byte {b} write gave {got.tolist()}"


# --------------------------------------------------------------------------------------------
# The shipped trained network


@cocotb.test(timeout_time=TIMEOUT_NETWORK_MS, timeout_unit="ms")
async def trained_network(dut):
    """The shipped int8 network (model/ref), weights loaded once: Fashion-MNIST test images, each
    whole network from one START, TB_IMAGES images per width with the width changed through WIDTH
    between consecutive images (no reload), then two per-layer (non-uniform) group settings
    through CHAN. Logits, the last conv's activations, LAYER_CYCLES and every counter are checked
    against model.golden.run and hw.contract.schedule.plan_run."""
    from model.data import load_split
    tb = TB(dut, mirror=True)
    await tb.reset()
    await tb.check_identity()
    cfg, drv, n = tb.cfg, tb.drv, tb.n
    ex = load_export()
    prog = build_program(ex, cfg)
    G, nconv = ex.groups, prog.n_convs
    rng = rng_for("network")
    test = load_split("test")
    runs = [("width", WIDTHS[r % len(WIDTHS)]) for r in range(IMAGES * len(WIDTHS))]
    for _ in range(MIXED):  # non-uniform widths through the per-layer channel-count registers
        runs.append(("groups", tuple(int(g) for g in rng.integers(1, G + 1, size=nconv))))
    picks = rng.choice(len(test), size=len(runs), replace=False)
    t = time.time()
    writes = tb.bus.writes
    await drv.load_program(prog)
    load_s, load_writes = time.time() - t, tb.bus.writes - writes
    dut._log.info("program loaded once: %d bus writes in %.1f s (%.0f writes/s)", load_writes, load_s, load_writes / load_s)
    tb.perf(kind="load_program", writes=load_writes, wall_s=load_s, writes_per_s=load_writes / load_s)
    last = prog.descs[nconv - 1]
    for r, ((mode, value), idx) in enumerate(zip(runs, picks)):
        img = test.images[idx]
        if mode == "width":
            groups = (value,) * nconv
            await drv.set_width(value)
            plan = plan_run(prog.descs, [(0, 0)] * cfg.n_desc, cfg, 0, prog.num_layers, width=value)
        else:
            groups = value
            await drv.set_groups(prog, groups)
            plan = plan_run(prog.descs, prog.chan(groups), cfg, 0, prog.num_layers)
        what = f"run {r}: test image {idx} at {mode} {value} (SEED={SEED})"
        assert plan.error == 0, f"{what}: hw.contract.schedule refuses it: {Error(plan.error).name}"
        t_image = time.time()
        await drv.load_image(image_bytes(prog, img))
        await drv.clear_counters()
        t, t_ns = time.time(), tb.now_ns()
        st = await tb.run(0, prog.num_layers, plan.counters["BUSY_CYCLES"])
        wall, sim_cycles = time.time() - t, (tb.now_ns() - t_ns) / CLK_NS
        counters = await drv.read_counters()
        layer_cycles = await drv.read_layer_cycles(prog.num_layers)
        assert st["error"] == 0, f"{what}: error {Error(st['error_code']).name} at descriptor {st['layer']}"
        ref = golden.run(ex, img[None], groups=groups)
        t_logits = time.time()
        logits = await drv.read_logits(ref.logits.shape[1])
        t_done = time.time()
        assert np.array_equal(logits, ref.logits[0]), f"{what}: logits {logits.tolist()}, golden {ref.logits[0].tolist()}"
        want = act_words(ref.acts[-1][0], n)
        acts = (await drv.read_window(ACT_WINDOW[last["dst"]], len(want), first=last["dst_base"])).view(np.int8)
        assert np.array_equal(acts, want), f"{what}: last conv activations differ from the golden model"
        assert layer_cycles == [lp.cycles for lp in plan.layers], \
            f"{what}: LAYER_CYCLES {layer_cycles}, schedule {[lp.cycles for lp in plan.layers]}"
        check_counters(counters, plan.counters, what)
        tb.check_mirror(what, st, counters, dict(enumerate(layer_cycles)),
                        [("LOGITS", 0, logits.view(np.uint8).reshape(-1, 4)),
                         (ACT_WINDOW[last["dst"]], last["dst_base"], acts)])
        dut._log.info("%s: %d cycles in %.2f s wall (%.0f cycles/s), class %d", what, counters["BUSY_CYCLES"],
                      wall, sim_cycles / wall, int(np.argmax(logits)))
        # inference_s: image load + START..DONE + logits read (the host's view of one image)
        tb.perf(kind="network", mode=mode, groups=list(groups), image=int(idx), busy_cycles=counters["BUSY_CYCLES"],
                sim_cycles=sim_cycles, wall_s=wall, cycles_per_s=sim_cycles / wall, poll=POLL,
                image_load_s=t - t_image, inference_s=(t - t_image) + wall + (t_done - t_logits),
                loadavg=os.getloadavg()[0])


# --------------------------------------------------------------------------------------------
# Bad configurations, ABORT, reset


def _base_layer(tb: TB) -> Case:
    """A short good layer (act A -> act B, G = 2, both groups active) run between the bad cases."""
    cfg = tb.cfg
    rng = rng_for("base")
    for _ in range(1000):
        c = gen_conv(rng, cfg, 600, "base layer", slot=0)  # short: it runs after every bad case
        d = c.desc
        if d["src"] == BUF_A and d["groups"] == 2 and c.gi == 2 and c.go == 2 and not c.width:
            return c
    raise RuntimeError("no base layer")


def bad_cases(tb: TB, base: Case) -> list:
    """(name, expected code, descriptors {slot: dict}, chan {slot: (gi, go)}, WIDTH, first, num)."""
    cfg = tb.cfg
    b = base.desc
    oh, ow = out_dims(b)

    def mut(**kw):
        d = dict(b)
        d.update(kw)
        return d

    ok = {0: (2, 2)}
    classifier = dict(b, kind=KIND_CLASSIFIER, dst=DST_LOGITS, relu=0, pool=0, triangular=0, h=3, w=3, kernel=3,
                      pad=0, stride=1, cout=min(10, cfg.max_classes), p_base=0)
    consumer = dict(b, src=b["dst"], dst=b["src"], cin=b["cout"], h=oh, w=ow, kernel=1, pad=0, stride=1, pool=0,
                    triangular=0, w_base=0, p_base=0, src_base=b["dst_base"], dst_base=0)
    D, GR, SH = Error.BAD_DESCRIPTOR, Error.BAD_GROUPS, Error.BAD_SHAPE
    cases = [
        ("kind 0", D, {0: mut(kind=0)}, ok, 0, 0, 1),
        ("kind 3", D, {0: mut(kind=3)}, ok, 0, 0, 1),
        ("conv writing the logits", D, {0: mut(dst=DST_LOGITS)}, ok, 0, 0, 1),
        ("conv with src == dst", D, {0: mut(src=BUF_B, dst=BUF_B)}, ok, 0, 0, 1),
        ("conv from source 3", D, {0: mut(src=3)}, ok, 0, 0, 1),
        ("classifier from the image", D, {0: dict(classifier, src=SRC_IMAGE)}, ok, 0, 0, 1),
        ("classifier into act A", D, {0: dict(classifier, dst=BUF_A)}, ok, 0, 0, 1),
        ("NUM_LAYERS 0", D, {}, ok, 0, 0, 0),
        ("FIRST+NUM beyond n_desc", D, {}, ok, 0, cfg.n_desc - 1, 2),
        ("FIRST_LAYER = n_desc", D, {}, ok, 0, cfg.n_desc, 1),
        ("G = 0", GR, {0: mut(groups=0)}, ok, 0, 0, 1),
        ("G > max_groups", GR, {0: mut(groups=cfg.max_groups + 1)}, ok, 0, 0, 1),
        ("zero active output groups", GR, {}, {0: (2, 0)}, 0, 0, 1),
        ("zero active input groups", GR, {}, {0: (0, 2)}, 0, 0, 1),
        ("more active groups than G (CHAN)", GR, {}, {0: (2, 3)}, 0, 0, 1),
        ("more active groups than G (WIDTH)", GR, {}, ok, 3, 0, 1),
        ("in-groups != producer's out-groups", GR, {1: consumer}, {0: (2, 1), 1: (2, 2)}, 0, 0, 2),
        ("K > max_kernel", SH, {0: mut(kernel=cfg.max_kernel + 2, pad=1, h=12, w=12)}, ok, 0, 0, 1),
        ("K = 0", SH, {0: mut(kernel=0, pad=0)}, ok, 0, 0, 1),
        ("stride 3", SH, {0: mut(stride=3)}, ok, 0, 0, 1),
        ("pad >= K", SH, {0: mut(kernel=3, pad=3)}, ok, 0, 0, 1),
        ("kernel larger than the padded input", SH, {0: mut(kernel=7, pad=1, h=2, w=2)}, ok, 0, 0, 1),
        ("Cin not a multiple of G", SH, {0: mut(cin=b["cin"] + 1)}, ok, 0, 0, 1),
        ("Cout not a multiple of G", SH, {0: mut(cout=b["cout"] + 1)}, ok, 0, 0, 1),
        ("pool on a 1-wide map", SH, {0: mut(pool=1, w=3, kernel=3, pad=0, h=6)}, ok, 0, 0, 1),
        ("output beyond act_depth", SH, {0: mut(dst_base=cfg.act_depth - 1)}, ok, 0, 0, 1),
        ("input beyond act_depth", SH, {0: mut(src_base=cfg.act_depth - 1)}, ok, 0, 0, 1),
        ("weights beyond wgt_depth", SH, {0: mut(w_base=cfg.wgt_depth - 1)}, ok, 0, 0, 1),
        ("parameters beyond prm_depth", SH, {0: mut(p_base=cfg.prm_depth)}, ok, 0, 0, 1),
        ("a row wider than the accumulators", SH, {0: mut(h=1, w=cfg.acc_depth + 1, kernel=1, pad=0, stride=1, pool=0)}, ok, 0, 0, 1),
        ("image larger than img_depth", SH, {0: mut(src=SRC_IMAGE, cin=1, h=cfg.img_depth // 16 + 1, w=16,
                                                        kernel=1, pad=0)}, ok, 0, 0, 1),
        ("image channels > img_channels", SH, {0: mut(src=SRC_IMAGE, cin=cfg.img_channels + 1, kernel=1, pad=0)}, ok, 0, 0, 1),
        ("classifier output not 1x1", SH, {0: dict(classifier, h=6, w=6)}, ok, 0, 0, 1),
        ("classifier with more than max_classes", SH, {0: dict(classifier, cout=cfg.max_classes + 1)}, ok, 0, 0, 1),
    ]
    return cases


async def good_run(tb: TB, case: Case, rng, what: str, reload: bool = False) -> None:
    """Rewrite ``case``'s descriptor and CHAN/WIDTH (and its data if ``reload``), fill its output
    region with fresh noise, run it and check it is bit-exact and cycle-exact."""
    try:
        await run_case(tb, case, rng, reload)
    except AssertionError as e:
        raise AssertionError(f"the good run after {what} failed: {e}") from None


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def bad_configurations(dut):
    """Each bad configuration sets STATUS.ERROR with the code (and failing descriptor) that
    hw.contract.schedule predicts, BUSY drops within a bounded wait, and the next good run is exact."""
    tb = TB(dut, mirror=True)
    await tb.reset()
    await tb.check_identity()
    cfg, drv = tb.cfg, tb.drv
    base = _base_layer(tb)
    rng = rng_for("bad")
    await good_run(tb, base, rng, "reset", reload=True)
    for name, code, descs, chan, width, first, num in bad_cases(tb, base):
        table = {0: base.desc, **descs}
        full = [table.get(j, base.desc) for j in range(cfg.n_desc)]
        chans = [chan.get(j, (2, 2)) for j in range(cfg.n_desc)]
        plan = plan_run(full, chans, cfg, first, num, width)
        assert plan.error == code, (f"test case {name!r} is not what it claims: hw.contract.schedule says "
                                    f"{Error(plan.error).name if plan.error else 'no error'}, expected {code.name}")
        for j, d in table.items():
            await tb.write_descriptor(j, d)
        await drv.write_reg("WIDTH", width)
        for j, (gi, go) in chan.items():
            await tb.set_chan(j, gi, go)
        await drv.clear_counters()
        st = await tb.run(first, num, sum(lp.cycles for lp in plan.layers) + 100)
        what = f"bad configuration {name!r} (SEED={SEED})"
        assert st["busy"] == 0 and st["done"] == 1 and st["error"] == 1, f"{what}: status {st}"
        assert st["error_code"] == plan.error, \
            f"{what}: ERROR_CODE {Error(st['error_code']).name}, hw.contract.schedule {Error(plan.error).name}"
        assert st["layer"] == plan.error_layer, f"{what}: STATUS.LAYER {st['layer']}, hw.contract.schedule {plan.error_layer}"
        tb.check_mirror(what, st, await drv.read_counters())
        ok_layers = plan.layers[:-1] if plan.layers else []  # those before the failing one ran
        got = await drv.read_layer_cycles(cfg.n_desc)
        for lp in ok_layers:
            assert got[lp.index] == lp.cycles, f"{what}: LAYER_CYCLES[{lp.index}] {got[lp.index]}, schedule {lp.cycles}"
        await drv.write_reg("WIDTH", 0)
        await good_run(tb, base, rng, what)


async def _long_case(tb: TB) -> Case:
    rng = rng_for("long")
    best = None
    for i in range(40):  # the longest of a few random layers within the budget
        c = gen_conv(rng, tb.cfg, BUDGET, f"long layer {i}")
        if c.desc["src"] != SRC_IMAGE and (best is None or c.plan.cycles > best.plan.cycles):
            best = c
    return best


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def abort_and_reset(dut):
    """ABORT at several points of a layer sets ERROR_CODE ABORTED and drops BUSY; windows answer
    SLVERR while busy and are not written; rst in the middle of a layer returns every register
    to its reset value. After each, the same layer from one START is bit- and cycle-exact."""
    tb = TB(dut)
    await tb.reset()
    await tb.check_identity()
    drv, m = tb.drv, tb.map
    case = await _long_case(tb)
    rng = rng_for("abort")
    cycles = case.plan.cycles
    what = case.describe()
    await run_case(tb, case, rng)  # clean reference run
    for frac in (0.005, 0.3, 0.6, 0.9):
        await drv.clear_counters()
        await drv.start(case.slot, 1)
        await ClockCycles(tb.dut.clk, max(1, int(frac * cycles)))
        st = await drv.status()
        assert st["busy"] == 1, f"{what}: not busy {int(frac * cycles)} cycles into a {cycles}-cycle layer: {st}"
        if frac == 0.3:  # windows while busy: SLVERR, no access
            w = m.window("WEIGHTS")
            data, resp = await tb.bus.read_raw(w.address(case.desc["w_base"]))
            assert (data, resp) == (0, AxiResp.SLVERR), f"window read while busy: data {data:#x} resp {resp}"
            resp = await tb.bus.write_raw(w.address(case.desc["w_base"]), b"\x11\x22\x33\x44")
            assert resp == AxiResp.SLVERR, f"window write while busy answered {resp}"
        await drv.abort()
        st = await drv.wait(max_polls=16)
        assert st["busy"] == 0 and st["error"] == 1 and st["error_code"] == Error.ABORTED, \
            f"{what}: ABORT at {frac:.0%} gave status {st}"
        assert st["layer"] == case.slot, f"{what}: ABORT: STATUS.LAYER {st['layer']}, running {case.slot}"
        if frac == 0.3:  # the write refused while busy left the weights as they were
            got = (await drv.read_window("WEIGHTS", 1, first=case.desc["w_base"])).view(np.int8)[0]
            want = pack_weights(case.w, case.desc, tb.n)[0]
            assert np.array_equal(got, want), f"a window write while busy changed WEIGHTS: {got.tolist()}"
        await good_run(tb, case, rng, f"ABORT at {frac:.0%}")  # the buffers still hold its data
    # reset in the middle of the layer
    await drv.start(case.slot, 1)
    await ClockCycles(tb.dut.clk, cycles // 2)
    assert (await drv.status())["busy"] == 1, f"{what}: not busy before the reset"
    await tb.reset(cycles=5)
    for name in ("STATUS", "WIDTH", "FIRST_LAYER", "NUM_LAYERS"):
        v = await drv.read_reg(name)
        assert v == m.reg(name).reset, f"{name} reads {v:#x} after rst in the middle of a layer"
    for i in range(8):
        v = await drv.read_reg(f"DESC_W{i}", case.slot)
        assert v == m.reg(f"DESC_W{i}").reset, f"DESC_W{i}[{case.slot}] reads {v:#x} after rst"
    await good_run(tb, case, rng, "rst in the middle of a layer", reload=True)
