"""hw.gateware.axil.ControlBus under amaranth.sim, driven by a small AXI4-Lite master written here.

Every expected value comes from the register map's declared layout (hw.contract.regmap) or from a
byte-level Python model of each window; a real ``amaranth.lib.memory.Memory`` sits behind every
window. Every wait is bounded; every random generator is seeded (the seed is in the test id and
in every assertion message). The master also checks, on every cycle it runs, the protocol rules
a slave must keep: B/R stay valid and stable until accepted, B comes only after both AW and W,
and ``bus_rd_bytes`` / ``bus_wr_bytes`` pulse exactly in the cycle a beat completes.
"""
from __future__ import annotations

import random

import pytest
from amaranth import ClockDomain, Elaboratable, Module, unsigned
from amaranth.back import verilog
from amaranth.lib import memory
from amaranth.sim import Simulator

from hw.gateware.axil import ControlBus
from hw.contract.params import ArrayConfig
from hw.contract.regmap import COUNTERS, DESC_WORDS, Resp, regmap

# Small geometries keep the simulation fast. SMALL: 4x4 with a 3-byte image word (one byte of
# the 4-byte entry does not exist). ODD: 10x10 with 9 image channels, so entries have slots that
# are partly (bytes 8..11 of a 9/10-byte word) or wholly (bytes 12..15) past the word.
SMALL = ArrayConfig(rows=4, cols=4, img_channels=3, img_depth=16, act_depth=16, acc_depth=16,
                    wgt_depth=32, prm_depth=8, line_depth=8, n_desc=4, max_classes=10,
                    max_kernel=5, max_groups=4)
ODD = ArrayConfig(rows=10, cols=10, img_channels=9, img_depth=8, act_depth=8, acc_depth=16,
                  wgt_depth=8, prm_depth=4, line_depth=8, n_desc=2, max_classes=4)
BOUND = 40  # most cycles any single handshake may take; the slave answers in 1-3


class Harness(Elaboratable):
    """ControlBus with one real memory (synchronous read, byte write enables) per window."""

    def __init__(self, cfg: ArrayConfig, seed: int):
        self.cfg = cfg
        self.cd = ClockDomain("sync")
        self.bus = ControlBus(cfg)
        self.map = regmap(cfg)
        rng = random.Random(seed)
        self.mems = {}
        self.init = {}
        for w in self.map.windows:
            init = [rng.getrandbits(8 * w.word_bytes) for _ in range(w.depth)]
            self.init[w.name] = init
            self.mems[w.name] = memory.Memory(shape=unsigned(8 * w.word_bytes), depth=w.depth,
                                              init=init)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.cd  # explicit, so a test can drive its reset
        m.submodules.bus = bus = self.bus
        for w in self.map.windows:
            p = w.name.lower()
            mem = self.mems[w.name]
            m.submodules[f"mem_{p}"] = mem
            wp = mem.write_port(granularity=8)
            rp = mem.read_port()
            m.d.comb += [
                wp.addr.eq(getattr(bus, f"{p}_addr")),
                wp.data.eq(getattr(bus, f"{p}_wdata")),
                wp.en.eq(getattr(bus, f"{p}_wen")),
                rp.addr.eq(getattr(bus, f"{p}_addr")),
                rp.en.eq(getattr(bus, f"{p}_re")),
                getattr(bus, f"{p}_rdata").eq(rp.data),
            ]
        return m


class Master:
    """A cycle-by-cycle AXI4-Lite master and protocol checker for one testbench."""

    def __init__(self, ctx, harness: Harness, rng: random.Random, seed: int):
        self.ctx = ctx
        self.h = harness
        self.b = harness.bus
        self.rng = rng
        self.seed = seed
        self.cycle = 0
        self.events = []  # (cycle, kind, details) for pulses and window accesses
        self._watch_pulses = ("start", "abort", "clear_counters")
        self._wins = [(w, w.name.lower()) for w in harness.map.windows]
        self._expect_rd_bytes = 0
        self._expect_wr_bytes = 0

    def msg(self, text: str) -> str:
        return f"seed={self.seed} cycle={self.cycle}: {text}"

    async def tick(self):
        """One clock cycle; records this cycle's pulses and window accesses first."""
        ctx, b = self.ctx, self.b
        for name in self._watch_pulses:
            if ctx.get(getattr(b, name)):
                self.events.append((self.cycle, name, None))
        for w, p in self._wins:
            wen = ctx.get(getattr(b, f"{p}_wen"))
            re = ctx.get(getattr(b, f"{p}_re"))
            if wen:
                self.events.append((self.cycle, "wen", (w.name, ctx.get(getattr(b, f"{p}_addr")),
                                                        wen, ctx.get(getattr(b, f"{p}_wdata")))))
            if re:
                self.events.append((self.cycle, "re", (w.name, ctx.get(getattr(b, f"{p}_addr")))))
        rd, wr = ctx.get(b.bus_rd_bytes), ctx.get(b.bus_wr_bytes)
        assert rd == self._expect_rd_bytes, self.msg(f"bus_rd_bytes={rd}, expected "
                                                     f"{self._expect_rd_bytes}")
        assert wr == self._expect_wr_bytes, self.msg(f"bus_wr_bytes={wr}, expected "
                                                     f"{self._expect_wr_bytes}")
        self._expect_rd_bytes = self._expect_wr_bytes = 0
        await ctx.tick()
        self.cycle += 1

    async def idle(self, n: int):
        for _ in range(n):
            await self.tick()

    def _scramble_inputs(self):
        """Drive random address/data while not valid: the slave must not latch them."""
        ctx, b, r = self.ctx, self.b, self.rng
        ctx.set(b.s_axil_awaddr, r.getrandbits(self.h.cfg.addr_bits))
        ctx.set(b.s_axil_araddr, r.getrandbits(self.h.cfg.addr_bits))
        ctx.set(b.s_axil_wdata, r.getrandbits(32))
        ctx.set(b.s_axil_wstrb, r.getrandbits(4))

    def _mode(self, mode):
        """(aw_delay, w_delay, b_delay) for a named or random order."""
        r = self.rng
        if mode is None:
            mode = r.choice(["together", "aw_first", "w_first", "random"])
        if mode == "together":
            return 0, 0, r.choice([0, 0, 2])
        if mode == "aw_first":
            return 0, r.randint(1, 4), r.choice([0, 3])
        if mode == "w_first":
            return r.randint(1, 4), 0, r.choice([0, 3])
        return r.randint(0, 3), r.randint(0, 3), r.randint(0, 3)

    async def write(self, addr: int, data: int, strb: int = 0xF, mode=None) -> int:
        """One write; returns BRESP."""
        ctx, b = self.ctx, self.b
        aw_delay, w_delay, b_delay = self._mode(mode)
        aw_done = w_done = False
        t = 0
        while not (aw_done and w_done):
            self._scramble_inputs()
            aw_v = not aw_done and t >= aw_delay
            w_v = not w_done and t >= w_delay
            ctx.set(b.s_axil_awvalid, aw_v)
            ctx.set(b.s_axil_wvalid, w_v)
            ctx.set(b.s_axil_awprot, self.rng.getrandbits(3))
            if aw_v:
                ctx.set(b.s_axil_awaddr, addr)
            if w_v:
                ctx.set(b.s_axil_wdata, data)
                ctx.set(b.s_axil_wstrb, strb)
            assert not ctx.get(b.s_axil_bvalid), self.msg("BVALID before AW and W were accepted")
            assert not ctx.get(b.s_axil_rvalid), self.msg("RVALID during a write")
            aw_fire = aw_v and ctx.get(b.s_axil_awready)
            w_fire = w_v and ctx.get(b.s_axil_wready)
            await self.tick()
            aw_done |= bool(aw_fire)
            w_done |= bool(w_fire)
            t += 1
            assert t < BOUND, self.msg(f"write {addr:#x}: AW/W not accepted in {BOUND} cycles")
        ctx.set(b.s_axil_awvalid, 0)
        ctx.set(b.s_axil_wvalid, 0)
        self._scramble_inputs()
        resp = None
        waited = 0
        for t in range(BOUND):
            bvalid = ctx.get(b.s_axil_bvalid)
            ready = bvalid and waited >= b_delay
            ctx.set(b.s_axil_bready, ready if bvalid else self.rng.getrandbits(1))
            if bvalid:
                r = ctx.get(b.s_axil_bresp)
                assert resp is None or r == resp, self.msg("BRESP changed while BVALID was held")
                resp = r
                waited += 1
                if ready:
                    self._expect_wr_bytes = bin(strb).count("1")
                    await self.tick()
                    ctx.set(b.s_axil_bready, 0)
                    return resp
            else:
                assert resp is None, self.msg("BVALID dropped before BREADY")
            await self.tick()
        raise AssertionError(self.msg(f"write {addr:#x}: no B response in {BOUND} cycles"))

    async def read(self, addr: int, mode=None) -> tuple[int, int]:
        """One read; returns (RDATA, RRESP)."""
        ctx, b, rng = self.ctx, self.b, self.rng
        ar_delay = rng.randint(0, 3) if mode is None else 0
        r_delay = rng.choice([0, 0, 1, 3]) if mode is None else 0
        for t in range(BOUND):
            self._scramble_inputs()
            ar_v = t >= ar_delay
            ctx.set(b.s_axil_arvalid, ar_v)
            ctx.set(b.s_axil_arprot, rng.getrandbits(3))
            if ar_v:
                ctx.set(b.s_axil_araddr, addr)
            assert not ctx.get(b.s_axil_rvalid), self.msg("RVALID before AR was accepted")
            fire = ar_v and ctx.get(b.s_axil_arready)
            await self.tick()
            if fire:
                break
        else:
            raise AssertionError(self.msg(f"read {addr:#x}: AR not accepted in {BOUND} cycles"))
        ctx.set(b.s_axil_arvalid, 0)
        self._scramble_inputs()
        got = None
        waited = 0
        for t in range(BOUND):
            rvalid = ctx.get(b.s_axil_rvalid)
            ready = rvalid and waited >= r_delay
            ctx.set(b.s_axil_rready, ready if rvalid else rng.getrandbits(1))
            if rvalid:
                beat = (ctx.get(b.s_axil_rdata), ctx.get(b.s_axil_rresp))
                assert got is None or beat == got, self.msg("R changed while RVALID was held")
                got = beat
                waited += 1
                if ready:
                    self._expect_rd_bytes = 4
                    await self.tick()
                    ctx.set(b.s_axil_rready, 0)
                    return got
            else:
                assert got is None, self.msg("RVALID dropped before RREADY")
            assert not ctx.get(b.s_axil_bvalid), self.msg("BVALID during a read")
            await self.tick()
        raise AssertionError(self.msg(f"read {addr:#x}: no R response in {BOUND} cycles"))

    def take_events(self):
        ev, self.events = self.events, []
        return ev


def run(harness: Harness, body, seed: int, max_cycles: int = 20000):
    """Simulate ``body(master)`` to completion; a watchdog fails it (never hangs) past
    ``max_cycles``."""
    finished = []

    async def tb(ctx):
        master = Master(ctx, harness, random.Random(seed), seed)
        await master.idle(2)
        # after reset the bus clears the descriptor table (n_desc cycles) and accepts nothing
        for _ in range(harness.cfg.n_desc):
            if ctx.get(harness.bus.s_axil_awready):
                break
            await master.tick()
        await body(master)
        finished.append(master.cycle)

    async def watchdog(ctx):
        for _ in range(max_cycles):
            await ctx.tick()
        raise AssertionError(f"seed={seed}: testbench did not finish within {max_cycles} cycles")

    sim = Simulator(harness)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.add_testbench(watchdog, background=True)
    sim.run()
    assert finished, f"seed={seed}: testbench did not finish"


# --------------------------------------------------------------------------------------------
# Independent expectations (from the declared layout rules, not from the bus)


def live_ro_value(m, b, reg, j, inputs):
    """What a live read-only register reads given the inputs the test drives."""
    if reg.name == "STATUS":
        s = inputs["status"]
        return s["busy"] | s["done"] << 1 | s["error"] << 2 | s["code"] << 8 | s["layer"] << 16
    if reg.name == "LAYER_CYCLES":
        return inputs["layer_cycles"][j]
    for k, name in enumerate(COUNTERS):
        if reg.offset == 0x100 + 8 * k:
            return inputs["counters"][name] & 0xFFFF_FFFF
        if reg.offset == 0x100 + 8 * k + 4:
            return inputs["counters"][name] >> 32
    return reg.reset


def element_list(m):
    return [(reg, j, reg.offset_of(j)) for reg in m.registers for j in range(reg.count)]


# --------------------------------------------------------------------------------------------
# Registers


@pytest.mark.parametrize("cfg", [ArrayConfig(), SMALL], ids=["8x8", "small"])
def test_reset_values(cfg):
    seed = 11
    h = Harness(cfg, seed)

    async def body(ms):
        for reg, j, off in element_list(h.map):
            data, resp = await ms.read(off)
            assert resp == Resp.OKAY, ms.msg(f"{reg.name}[{j}] resp {resp}")
            assert data == reg.reset, ms.msg(f"{reg.name}[{j}] reads {data:#x}, reset {reg.reset:#x}")
        # Independent spot checks of the constant registers against the config.
        assert (await ms.read(0x000))[0] == 0x43534331
        geo = (await ms.read(0x004))[0]
        assert geo == cfg.rows | cfg.cols << 8 | cfg.img_channels << 16 | cfg.n_desc << 24
        lim = (await ms.read(0x01C))[0]
        assert lim == (cfg.line_depth | cfg.max_classes << 16 | cfg.max_kernel << 24
                       | cfg.max_groups << 28)
        assert (await ms.read(0x00C))[0] == cfg.wgt_depth
        b = ms.b
        assert ms.ctx.get(b.first_layer) == 0 and ms.ctx.get(b.width) == 0
        assert not any(ms.ctx.get(getattr(b, p)) for p in ("start", "abort", "clear_counters"))

    run(h, body, seed)


@pytest.mark.parametrize("seed", [3, 4])
def test_rw_registers_read_back(seed):
    h = Harness(SMALL, seed)
    m = h.map
    rw = [(reg, j, off) for reg, j, off in element_list(m) if reg.access == "rw"]

    async def body(ms):
        rng = ms.rng
        values = {}
        for reg, j, off in rng.sample(rw, len(rw)):
            v = rng.getrandbits(32)
            assert await ms.write(off, v) == Resp.OKAY, ms.msg(f"{reg.name}[{j}]")
            values[(reg.name, j)] = v & reg.mask
        for reg, j, off in rng.sample(rw, len(rw)):
            data, resp = await ms.read(off)
            assert resp == Resp.OKAY
            assert data == values[(reg.name, j)], ms.msg(
                f"{reg.name}[{j}] reads {data:#010x}, wrote {values[(reg.name, j)]:#010x}")
        # The same values on the output ports, positioned as the layout declares.
        ctx, b = ms.ctx, ms.b
        assert ctx.get(b.first_layer) == values[("FIRST_LAYER", 0)]
        assert ctx.get(b.num_layers) == values[("NUM_LAYERS", 0)]
        assert ctx.get(b.width) == values[("WIDTH", 0)]
        for j in range(SMALL.n_desc):
            chan = values[("CHAN", j)]
            assert ctx.get(b.chan[j].out_groups) == chan & 0xFF, ms.msg(f"chan[{j}]")
            assert ctx.get(b.chan[j].in_groups) == chan >> 8, ms.msg(f"chan[{j}]")
            ctx.set(b.desc_idx, j)  # the sequencer's read port of the descriptor table (registered)
            await ctx.tick()
            for i in range(DESC_WORDS):
                assert ctx.get(b.desc[i]) == values[(f"DESC_W{i}", j)], ms.msg(f"desc[{j}][{i}]")
        # The descriptor at 0x400 + 32j + 4i is word i of descriptor j.
        j = SMALL.n_desc - 1
        ctx.set(b.desc_idx, j)
        await ctx.tick()
        assert (await ms.read(0x400 + 32 * j + 4 * 3))[0] == ctx.get(b.desc[3])

    run(h, body, seed)


def test_reset_clears_the_descriptor_table_before_the_bus_is_ready():
    """For n_desc cycles after reset AWREADY, WREADY and ARREADY stay low (the table writes its
    zero rows), even with every channel valid; then all three rise. A descriptor written before
    a reset reads 0 after it."""
    h = Harness(SMALL, 3)

    async def wait_ready(ctx, b):
        low = 0
        while not (ctx.get(b.s_axil_awready) or ctx.get(b.s_axil_wready) or ctx.get(b.s_axil_arready)):
            low += 1
            assert low <= 4 * SMALL.n_desc, "the bus never became ready after reset"
            await ctx.tick()
        assert low == SMALL.n_desc, f"not ready for {low} cycles after reset, expected n_desc = {SMALL.n_desc}"
        assert ctx.get(b.s_axil_awready) and ctx.get(b.s_axil_wready)

    async def tb(ctx):
        b = h.bus
        j = SMALL.n_desc - 1
        for sig in (b.s_axil_awvalid, b.s_axil_wvalid, b.s_axil_bready):
            ctx.set(sig, 1)
        ctx.set(b.s_axil_awaddr, 0x400 + 32 * j + 4)  # DESC_W1 of the last descriptor
        ctx.set(b.s_axil_wdata, 0x00050003)
        ctx.set(b.s_axil_wstrb, 0xF)
        await wait_ready(ctx, b)
        await ctx.tick()
        for sig in (b.s_axil_awvalid, b.s_axil_wvalid):
            ctx.set(sig, 0)
        for _ in range(8):
            if ctx.get(b.s_axil_bvalid):
                break
            await ctx.tick()
        assert ctx.get(b.s_axil_bvalid) and ctx.get(b.s_axil_bresp) == Resp.OKAY
        await ctx.tick()
        ctx.set(b.desc_idx, j)
        await ctx.tick()
        assert ctx.get(b.desc[1]) == 0x00050003, "the descriptor write did not land"
        ctx.set(h.cd.rst, 1)  # reset, held 3 cycles
        await ctx.delay(3e-8)  # three clock edges (ctx.tick() would raise DomainReset)
        ctx.set(h.cd.rst, 0)
        await wait_ready(ctx, b)
        for k in range(SMALL.n_desc):
            ctx.set(b.desc_idx, k)
            await ctx.tick()
            assert all(ctx.get(b.desc[i]) == 0 for i in range(DESC_WORDS)), f"descriptor {k} not cleared"
        finished.append(True)

    finished = []
    sim = Simulator(h)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run_until(1e-8 * (20 * SMALL.n_desc + 100))
    assert finished


@pytest.mark.parametrize("seed", [5])
def test_ro_registers_ignore_writes_and_show_inputs(seed):
    h = Harness(SMALL, seed)
    m = h.map
    rng = random.Random(seed)
    inputs = {
        "status": {"busy": 1, "done": 0, "error": 1, "code": rng.randrange(16),
                   "layer": rng.randrange(256)},
        "counters": {c: rng.getrandbits(64) for c in COUNTERS},
        "layer_cycles": [rng.getrandbits(32) for _ in range(SMALL.n_desc)],
    }
    ro = [(reg, j, off) for reg, j, off in element_list(m) if reg.access == "ro"]

    async def body(ms):
        ctx, b = ms.ctx, ms.b
        s = inputs["status"]
        ctx.set(b.status_busy, s["busy"])
        ctx.set(b.status_done, s["done"])
        ctx.set(b.status_error, s["error"])
        ctx.set(b.status_code, s["code"])
        ctx.set(b.status_layer, s["layer"])
        for c, v in inputs["counters"].items():
            ctx.set(getattr(b.counters, c.lower()), v)
        for j, v in enumerate(inputs["layer_cycles"]):
            ctx.set(b.layer_cycles[j], v)
        for reg, j, off in rng.sample(ro, len(ro)):
            assert await ms.write(off, ms.rng.getrandbits(32)) == Resp.OKAY, ms.msg(reg.name)
        for reg, j, off in ro:
            data, resp = await ms.read(off)
            want = live_ro_value(m, b, reg, j, inputs)
            assert (data, resp) == (want, Resp.OKAY), ms.msg(
                f"{reg.name}[{j}] reads {data:#010x}/{resp}, expected {want:#010x}")
        assert not any(kind in ("start", "abort", "clear_counters", "wen")
                       for _, kind, _ in ms.take_events())

    run(h, body, seed)


@pytest.mark.parametrize("seed", [6])
def test_ctrl_pulses_last_one_cycle_and_read_zero(seed):
    h = Harness(SMALL, seed)
    bits = {"start": 1, "abort": 2, "clear_counters": 4}

    async def body(ms):
        for n in range(30):
            data = 1 << n if n < 3 else ms.rng.getrandbits(32)
            strb = 0xF if n < 3 else ms.rng.choice([0xF, 0xF, 0x1, 0xE, 0x3])
            ms.take_events()
            assert await ms.write(0x020, data, strb) == Resp.OKAY
            await ms.idle(ms.rng.randint(0, 2))
            ev = ms.take_events()
            for name, bit in bits.items():
                cycles = [c for c, k, _ in ev if k == name]
                want = 1 if (data & bit) and (strb & 1) else 0
                assert len(cycles) == want, ms.msg(f"{name}: high in cycles {cycles} after writing "
                                                   f"{data:#x} strb {strb:#x}; expected {want}")
            got, resp = await ms.read(0x020)
            assert (got, resp) == (0, Resp.OKAY), ms.msg("CTRL must read 0")

    run(h, body, seed)


@pytest.mark.parametrize("seed", [7])
def test_wstrb_partial_register_writes(seed):
    h = Harness(SMALL, seed)
    rw = [(reg, j, off) for reg, j, off in element_list(h.map) if reg.access == "rw"]

    async def body(ms):
        rng = ms.rng
        for _ in range(30):
            reg, j, off = rng.choice(rw)
            first = rng.getrandbits(32)
            assert await ms.write(off, first) == Resp.OKAY
            second, strb = rng.getrandbits(32), rng.randrange(16)
            assert await ms.write(off, second, strb) == Resp.OKAY
            mask = sum(0xFF << (8 * k) for k in range(4) if strb >> k & 1)
            want = ((first & ~mask) | (second & mask)) & reg.mask
            got, _ = await ms.read(off)
            assert got == want, ms.msg(f"{reg.name}[{j}] strb {strb:#x}: {got:#x} != {want:#x}")

    run(h, body, seed)


# --------------------------------------------------------------------------------------------
# Windows


def window_bytes(value: int, word_bytes: int) -> list[int]:
    return [(value >> (8 * i)) & 0xFF for i in range(word_bytes)]


@pytest.mark.parametrize("cfg,seed", [(SMALL, 8), (ODD, 9)], ids=["small-8", "odd-9"])
def test_window_writes_and_reads(cfg, seed):
    h = Harness(cfg, seed)
    model = {w.name: [window_bytes(v, w.word_bytes) for v in h.init[w.name]]
             for w in h.map.windows}

    async def body(ms):
        rng = ms.rng
        wins = h.map.windows
        for _ in range(120):
            w = rng.choice(wins)
            e = rng.randrange(w.depth)
            slot = rng.randrange(w.stride // 4)
            addr = w.address(e, 4 * slot)
            if rng.random() < 0.5:
                data, strb = rng.getrandbits(32), rng.randrange(16)
                ms.take_events()
                assert await ms.write(addr, data, strb) == Resp.OKAY, ms.msg(w.name)
                ev = [x for _, k, x in ms.take_events() if k in ("wen", "re")]
                touched = [4 * slot + k for k in range(4)
                           if strb >> k & 1 and 4 * slot + k < w.word_bytes]
                if w.access == "ro" or not touched:
                    assert ev == [], ms.msg(f"{w.name}: unexpected access {ev}")
                    continue
                assert len(ev) == 1, ms.msg(f"{w.name}: one write cycle expected, got {ev}")
                name, a, wen, wdata = ev[0]
                assert (name, a) == (w.name, e), ms.msg(f"wrote {name}[{a}], expected {w.name}[{e}]")
                assert wen == sum(1 << i for i in touched), ms.msg(f"{w.name} wen {wen:#x}")
                for i in touched:
                    byte = (data >> (8 * (i - 4 * slot))) & 0xFF
                    assert (wdata >> (8 * i)) & 0xFF == byte, ms.msg(f"{w.name} wdata byte {i}")
                    model[w.name][e][i] = byte
            else:
                ms.take_events()
                data, resp = await ms.read(addr)
                ev = [x for _, k, x in ms.take_events() if k in ("wen", "re")]
                assert ev == [(w.name, e)], ms.msg(f"{w.name}[{e}]: read accesses {ev}")
                want = sum(model[w.name][e][4 * slot + k] << (8 * k) for k in range(4)
                           if 4 * slot + k < w.word_bytes)
                assert (data, resp) == (want, Resp.OKAY), ms.msg(
                    f"{w.name}[{e}] slot {slot}: {data:#010x} != {want:#010x}")
        # The memories hold exactly the model (nothing else was written).
        for w in wins:
            for e in range(w.depth):
                got = ms.ctx.get(h.mems[w.name].data[e])
                want = sum(b << (8 * i) for i, b in enumerate(model[w.name][e]))
                assert got == want, ms.msg(f"{w.name}[{e}] holds {got:#x}, model {want:#x}")

    run(h, body, seed)


@pytest.mark.parametrize("seed", [10])
def test_windows_answer_slverr_while_busy(seed):
    h = Harness(SMALL, seed)

    async def body(ms):
        ctx, rng = ms.ctx, ms.rng
        ctx.set(ms.b.busy, 1)
        for w in h.map.windows:
            for _ in range(3):
                addr = w.address(rng.randrange(w.depth), 4 * rng.randrange(w.stride // 4))
                assert await ms.write(addr, rng.getrandbits(32)) == Resp.SLVERR, ms.msg(w.name)
                assert (await ms.read(0x000))[0] != 0  # leave non-zero data in the read path
                assert await ms.read(addr) == (0, Resp.SLVERR), ms.msg(w.name)
        assert [x for _, k, x in ms.take_events() if k in ("wen", "re")] == []
        # Registers stay accessible while busy.
        assert await ms.write(0x028, 0x5A) == Resp.OKAY
        assert await ms.read(0x028) == (0x5A, Resp.OKAY)
        for w in h.map.windows:
            for e in range(w.depth):
                assert ctx.get(h.mems[w.name].data[e]) == h.init[w.name][e], ms.msg(w.name)
        ctx.set(ms.b.busy, 0)
        w = h.map.window("ACT_A")
        assert await ms.read(w.address(1)) == (h.init["ACT_A"][1] & 0xFFFF_FFFF, Resp.OKAY)

    run(h, body, seed)


def unmapped_addresses(m, rng, n):
    """Edges of every register block and window, plus random addresses, that map to nothing."""
    cands = {0xFFFFC, 0x034, 0x03C}
    for r in m.registers:
        cands |= {r.offset - 4, r.offset + r.count * r.stride}
    for w in m.windows:
        cands |= {w.base - 4, w.end}
    cands |= {rng.getrandbits(m.cfg.addr_bits) & ~3 for _ in range(n)}
    return sorted(a for a in cands if 0 <= a < (1 << m.cfg.addr_bits) and m.lookup(a) is None)


@pytest.mark.parametrize("seed", [12])
def test_unmapped_addresses_answer_decerr(seed):
    h = Harness(SMALL, seed)
    addrs = unmapped_addresses(h.map, random.Random(seed), 40)
    assert len(addrs) > 30

    async def body(ms):
        for a in addrs:
            data = ms.rng.getrandbits(32)
            assert await ms.write(a | ms.rng.randrange(4), data) == Resp.DECERR, ms.msg(f"{a:#x}")
            assert (await ms.read(0x000))[0] != 0  # leave non-zero data in the read path
            assert await ms.read(a) == (0, Resp.DECERR), ms.msg(f"{a:#x}")
        assert ms.take_events() == [], ms.msg("an unmapped access touched a port")
        for reg, j, off in element_list(h.map):  # nothing changed
            if reg.access == "rw":
                assert await ms.read(off) == (reg.reset, Resp.OKAY), ms.msg(reg.name)

    run(h, body, seed)


@pytest.mark.parametrize("mode", ["together", "aw_first", "w_first", "random"])
def test_write_orders_and_bus_byte_counts(mode):
    """AW/W in each order, with delays; bus_rd/wr_bytes pulse once per beat (Master.tick checks
    every cycle)."""
    seed = 13
    h = Harness(SMALL, seed)
    reg = h.map.reg("DESC_W1")  # two 16-bit fields: every byte lane is stored

    async def body(ms):
        value = {j: 0 for j in range(reg.count)}
        for n in range(16):
            j = n % reg.count
            strb, v = ms.rng.randrange(16), ms.rng.getrandbits(32)
            assert await ms.write(reg.offset_of(j), v, strb, mode=mode) == Resp.OKAY
            mask = sum(0xFF << (8 * k) for k in range(4) if strb >> k & 1)
            value[j] = (value[j] & ~mask) | (v & mask)
            assert await ms.read(reg.offset_of(j)) == (value[j], Resp.OKAY), ms.msg(f"{n}")

    run(h, body, seed)


def test_read_waits_for_a_started_write():
    """AR is not accepted while a write's AW is in (one transaction at a time)."""
    h = Harness(SMALL, 14)

    async def body(ms):
        ctx, b = ms.ctx, ms.b
        ctx.set(b.s_axil_awaddr, 0x028)
        ctx.set(b.s_axil_awvalid, 1)
        ctx.set(b.s_axil_araddr, 0x02C)
        ctx.set(b.s_axil_arvalid, 1)
        assert ctx.get(b.s_axil_awready) and not ctx.get(b.s_axil_arready)
        await ms.tick()
        ctx.set(b.s_axil_awvalid, 0)
        for _ in range(5):  # W withheld: the write is open, AR must wait
            assert not ctx.get(b.s_axil_arready) and not ctx.get(b.s_axil_awready)
            await ms.tick()
        ctx.set(b.s_axil_wdata, 0x33)
        ctx.set(b.s_axil_wstrb, 0xF)
        ctx.set(b.s_axil_wvalid, 1)
        assert ctx.get(b.s_axil_wready)
        await ms.tick()
        ctx.set(b.s_axil_wvalid, 0)
        ctx.set(b.s_axil_bready, 1)
        for _ in range(BOUND):
            assert not ctx.get(b.s_axil_arready) or not ctx.get(b.s_axil_bvalid)
            if ctx.get(b.s_axil_bvalid):
                ms._expect_wr_bytes = 4
                await ms.tick()
                break
            await ms.tick()
        else:
            raise AssertionError("no B")
        ctx.set(b.s_axil_bready, 0)
        for _ in range(BOUND):  # now the read goes through
            if ctx.get(b.s_axil_arready):
                await ms.tick()
                break
            await ms.tick()
        else:
            raise AssertionError("AR never accepted")
        ctx.set(b.s_axil_arvalid, 0)
        ctx.set(b.s_axil_rready, 1)
        for _ in range(BOUND):
            if ctx.get(b.s_axil_rvalid):
                assert ctx.get(b.s_axil_rdata) == 0 and ctx.get(b.s_axil_rresp) == Resp.OKAY
                ms._expect_rd_bytes = 4
                await ms.tick()
                break
            await ms.tick()
        else:
            raise AssertionError("no R")
        assert ctx.get(b.first_layer) == 0x33

    run(h, body, 14)


# --------------------------------------------------------------------------------------------
# Construction and Verilog


def test_constructor_checks_its_argument():
    with pytest.raises(TypeError, match="ArrayConfig"):
        ControlBus("8x8")
    with pytest.raises(TypeError):
        ControlBus(None)


def test_converts_to_verilog():
    cfg = ArrayConfig()
    text = verilog.convert(ControlBus(cfg), name="controlbus")
    assert "module controlbus" in text
    ports = ["s_axil_" + s for s in (
        "awaddr", "awprot", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready", "bresp",
        "bvalid", "bready", "araddr", "arprot", "arvalid", "arready", "rdata", "rresp", "rvalid",
        "rready")]
    ports += ["start", "abort", "clear_counters", "busy", "first_layer", "chan", "desc_idx", "desc",
              "status_code", "layer_cycles", "counters__macs", "bus_rd_bytes", "bus_wr_bytes"]
    for w in regmap(cfg).windows:
        ports += [f"{w.name.lower()}_{s}" for s in ("addr", "wdata", "wen", "re", "rdata")]
    decl = {line.split()[-1].rstrip(";") for line in text.splitlines()
            if line.strip().startswith(("input", "output"))}
    missing = [p for p in ports if p not in decl]
    assert not missing, f"ports missing from the Verilog: {missing}"
    assert "input [19:0] s_axil_awaddr;" in text
