"""The whole accelerator in amaranth.sim, driven over AXI4-Lite by the host driver (sw/driver.py):
bit-exact against the golden model and cycle-exact against hw.contract.schedule, at two widths."""
import asyncio
from math import prod

import numpy as np
import pytest
import torch
from amaranth.sim import Simulator

from hw.gateware.accel import Accelerator
from hw.contract.params import ArrayConfig
from hw.contract.program import act_words, build_program, image_bytes
from hw.contract.regmap import DESC_BASE, DESC_STRIDE, Error, encode_descriptor
from hw.contract.schedule import SRC_IMAGE, out_dims, plan_run
from model import golden
from model.config import ConvSpec, NetConfig
from model.net import DynNet
from model.quantize import export
from sw.driver import Driver
from sw.model_device import ModelBus

SEED = 7


class SimBus:
    """AXI4-Lite master for amaranth.sim (bounded waits)."""

    def __init__(self, ctx, dut):
        self.ctx, self.dut = ctx, dut

    async def _handshake(self, valid, ready, limit=64):
        for _ in range(limit):
            r = self.ctx.get(ready)
            await self.ctx.tick()
            if r:
                self.ctx.set(valid, 0)
                return
        raise TimeoutError("AXI handshake timed out")

    async def write32(self, addr, value):
        ctx, d = self.ctx, self.dut
        ctx.set(d.s_axil_awaddr, addr)
        ctx.set(d.s_axil_wdata, value & 0xFFFFFFFF)
        ctx.set(d.s_axil_wstrb, 0xF)
        ctx.set(d.s_axil_awvalid, 1)
        ctx.set(d.s_axil_wvalid, 1)
        ctx.set(d.s_axil_bready, 1)
        aw = w = False
        for _ in range(64):
            awr, wr = ctx.get(d.s_axil_awready), ctx.get(d.s_axil_wready)
            await ctx.tick()
            if awr and not aw:
                aw = True
                ctx.set(d.s_axil_awvalid, 0)
            if wr and not w:
                w = True
                ctx.set(d.s_axil_wvalid, 0)
            if aw and w:
                break
        else:
            raise TimeoutError(f"AXI write to {addr:#x} not accepted")
        for _ in range(64):
            bv, resp = ctx.get(d.s_axil_bvalid), ctx.get(d.s_axil_bresp)
            await ctx.tick()
            if bv:
                ctx.set(d.s_axil_bready, 0)
                assert resp == 0, f"write to {addr:#x} answered {resp}"
                return
        raise TimeoutError("AXI write response missing")

    async def read32(self, addr):
        ctx, d = self.ctx, self.dut
        ctx.set(d.s_axil_araddr, addr)
        ctx.set(d.s_axil_arvalid, 1)
        ctx.set(d.s_axil_rready, 1)
        await self._handshake(d.s_axil_arvalid, d.s_axil_arready)
        for _ in range(64):
            rv, data, resp = ctx.get(d.s_axil_rvalid), ctx.get(d.s_axil_rdata), ctx.get(d.s_axil_rresp)
            await ctx.tick()
            if rv:
                ctx.set(d.s_axil_rready, 0)
                assert resp == 0, f"read of {addr:#x} answered {resp}"
                return data
        raise TimeoutError("AXI read data missing")


def run_sim(cfg, body, vcd=None):
    dut = Accelerator(cfg)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    result = {}

    async def tb(ctx):
        result["value"] = await body(Driver(SimBus(ctx, dut), cfg))

    sim.add_testbench(tb)
    sim.run()
    return result["value"]


def small_net(pool2: bool):
    """A small net: 8x8 image, conv 1->8 (pool), conv 8->8 3x3 stride 2 pad 1 (triangular, pooled
    when ``pool2``: a 2x2 map, so the pool's line buffer is read in the cycle after it is
    written), classifier."""
    torch.manual_seed(SEED)
    cfg = NetConfig(in_size=8, groups=2, convs=(ConvSpec("c1", 8, kernel=3, padding=1, pool=True),
                                                 ConvSpec("c2", 8, kernel=3, stride=2, padding=1, pool=pool2)))
    net = DynNet(cfg)
    with torch.no_grad():
        for bn in net.bns:
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
    rng = np.random.default_rng(SEED)
    images = rng.integers(0, 256, (16, 1, 8, 8), dtype=np.uint8)
    return images, export(net, images, f"/tmp/chanscale_tiny_export{int(pool2)}.npz")


@pytest.fixture(scope="module")
def tiny():
    return small_net(pool2=False)


ACC = ArrayConfig(rows=4, cols=4, act_depth=256, acc_depth=64, wgt_depth=512, prm_depth=16, img_depth=128,
                  line_depth=16, n_desc=8, max_classes=16)


def test_small_network_two_widths_bit_exact_and_cycle_exact(tiny):
    check_network(*tiny)


def test_pooled_2x2_map_bit_exact_and_cycle_exact():
    """conv2 pooled on its 2x2 map: the line buffer's word is read the cycle after its write."""
    check_network(*small_net(pool2=True))


def check_network(images, ex):
    prog = build_program(ex, ACC)

    async def body(drv):
        await drv.load_program(prog)
        await drv.load_image(image_bytes(prog, images[0]))
        out = {}
        for k in (1, 2):  # width change = one register write, weights stay
            await drv.clear_counters()
            await drv.set_width(k)
            await drv.run(0, prog.num_layers, max_polls=5000)
            counters = await drv.read_counters()  # before any window read adds bus traffic
            out[k] = dict(counters=counters, layer_cycles=await drv.read_layer_cycles(prog.num_layers),
                          logits=await drv.read_logits(10), c1=await drv.read_window("ACT_A", 64),
                          c2=await drv.read_window("ACT_B", 16))
        return out

    out = run_sim(ACC, body)
    model = asyncio.run(body(Driver(ModelBus(ACC), ACC)))  # the same driver calls on the model
    for k in (1, 2):
        for name, value in out[k]["counters"].items():
            if name in ("CYCLES", "BUS_RD_BYTES"):  # bus idle time and STATUS polls: host-dependent
                continue
            assert model[k]["counters"][name] == value, \
                f"width {k}/2 counter {name}: RTL {value}, model backend {model[k]['counters'][name]}"
        assert model[k]["layer_cycles"] == out[k]["layer_cycles"]
        assert np.array_equal(model[k]["logits"], out[k]["logits"])
    for k in (1, 2):
        ref = golden.run(ex, images[:1], groups=(k, k))
        assert np.array_equal(out[k]["logits"], ref.logits[0]), f"width {k}/2 logits (seed {SEED})"
        w1 = act_words(ref.acts[0][0], 4)
        assert np.array_equal(out[k]["c1"][:len(w1)].view(np.int8), w1), f"width {k}/2 conv1 (seed {SEED})"
        w2 = act_words(ref.acts[1][0], 4)
        assert np.array_equal(out[k]["c2"][:len(w2)].view(np.int8), w2), f"width {k}/2 conv2 (seed {SEED})"
        plan = plan_run(prog.descs, [(0, 0)] * ACC.n_desc, ACC, 0, prog.num_layers, width=k)
        assert [lp.cycles for lp in plan.layers] == out[k]["layer_cycles"], f"width {k}/2 per-layer cycles"
        hw = out[k]["counters"]
        for name, value in plan.counters.items():
            assert hw[name] == value, f"width {k}/2 counter {name}: RTL {hw[name]}, schedule {value}"


def test_bad_configurations_set_error_codes_and_never_hang(tiny):
    """Each bad configuration sets its error code (the one hw.contract.schedule predicts), the sequencer
    stops within a bounded number of polls, and a good run afterwards is still bit-exact."""
    images, ex = tiny
    prog = build_program(ex, ACC)
    n_layers = prog.num_layers
    good = prog.descs

    def bad(j, **fields):
        descs = [dict(d) for d in good]
        descs[j].update(fields)
        return descs

    cases = [  # (name, descriptors, width, chan groups or None, first, num)
        ("kind 0", bad(0, kind=0), 1, None, 0, n_layers),
        ("conv writing logits", bad(1, dst=3), 1, None, 0, n_layers),
        ("no layers", good, 1, None, 0, 0),
        ("range beyond the table", good, 1, None, 6, 5),
        ("zero groups", good, 0, (0, 1), 0, n_layers),
        ("more groups than G", good, 3, None, 0, n_layers),
        ("in-groups != producer's out-groups", good, 0, "mismatch", 0, n_layers),
        ("kernel beyond max_kernel", bad(0, kernel=9, pad=4), 1, None, 0, n_layers),
        ("output beyond act_depth", bad(0, dst_base=250), 1, None, 0, n_layers),
        ("pool on a 1-wide map", bad(1, pool=True, h=2, w=2, kernel=3, pad=0), 1, None, 0, n_layers),
        ("weights beyond wgt_depth", bad(1, w_base=500), 1, None, 0, n_layers),
    ]

    def chan_for(groups):
        if groups is None:
            return [(0, 0)] * ACC.n_desc
        if groups == "mismatch":
            c = prog.chan((1, 1))
            c[1] = (2, 1)  # conv2 claims 2 input groups, conv1 produced 1
            return c
        return prog.chan(groups)

    async def body(drv):
        await drv.load_program(prog)
        await drv.load_image(image_bytes(prog, images[0]))
        got = []
        for name, descs, width, groups, first, num in cases:
            for j, d in enumerate(descs):
                for i, word in enumerate(encode_descriptor(d)):
                    await drv.bus.write32(DESC_BASE + DESC_STRIDE * j + 4 * i, word)
            chan = chan_for(groups)
            if width:
                await drv.set_width(width)
            else:
                await drv.write_reg("WIDTH", 0)
                for j in range(ACC.n_desc):
                    await drv.write_reg("CHAN", (chan[j][0] << 8) | chan[j][1], j)
            await drv.start(first, num)
            st = await drv.wait(max_polls=400)
            got.append((name, st, plan_run(descs, chan, ACC, first, num, width)))
        # ABORT in the middle of a layer, then a good run must still be bit-exact
        for j, d in enumerate(good):
            for i, word in enumerate(encode_descriptor(d)):
                await drv.bus.write32(DESC_BASE + DESC_STRIDE * j + 4 * i, word)
        await drv.set_width(2)
        await drv.start(0, n_layers)
        for _ in range(40):
            await drv.status()
        await drv.abort()
        aborted = await drv.wait(max_polls=50)
        await drv.run(0, n_layers, max_polls=5000)
        return got, aborted, await drv.read_logits(10)

    got, aborted, logits = run_sim(ACC, body)
    for name, st, plan in got:
        assert plan.error != 0, f"{name}: the schedule model does not see an error"
        assert st["error"] == 1 and st["busy"] == 0, f"{name}: status {st}"
        assert st["error_code"] == plan.error, f"{name}: code {Error(st['error_code']).name}, expected {Error(plan.error).name}"
        assert st["layer"] == plan.error_layer, f"{name}: failing layer {st['layer']}, expected {plan.error_layer}"
    assert aborted["error"] == 1 and aborted["error_code"] == Error.ABORTED, f"abort: {aborted}"
    ref = golden.run(ex, images[:1], groups=(2, 2))
    assert np.array_equal(logits, ref.logits[0]), "the run after ABORT is not bit-exact"


def test_buffer_end_checks_at_the_boundary(tiny):
    """A layer whose input, output or parameters end exactly at the buffer's end runs; one word
    further, or a base past the end (up to 2**32 - 1), is BAD_SHAPE, as hw.contract.schedule says."""
    images, ex = tiny
    prog = build_program(ex, ACC)
    good = prog.descs
    width = 2
    n = ACC.rows
    d0, d1 = good[0], good[1]
    assert d0["src"] == SRC_IMAGE and d1["src"] != SRC_IMAGE, "the tiny network's first two layers"
    out_words = -(-d0["cout"] // n) * prod(out_dims(d0))
    in_words = -(-d1["cin"] // n) * d1["h"] * d1["w"]
    n_out = width * (d0["cout"] // d0["groups"])
    top = 2 ** 32 - 1

    def mut(j, **fields):
        descs = [dict(d) for d in good]
        descs[j].update(fields)
        return descs

    cases = [  # (name, descriptors, first layer); each runs one layer
        ("output ends at act_depth", mut(0, dst_base=ACC.act_depth - out_words), 0),
        ("output one word past", mut(0, dst_base=ACC.act_depth - out_words + 1), 0),
        ("output base 2**32 - 1", mut(0, dst_base=top), 0),
        ("input ends at act_depth", mut(1, src_base=ACC.act_depth - in_words), 1),
        ("input one word past", mut(1, src_base=ACC.act_depth - in_words + 1), 1),
        ("input base 2**32 - 1", mut(1, src_base=top), 1),
        ("parameters end at prm_depth", mut(0, p_base=ACC.prm_depth - -(-n_out // n)), 0),
        ("parameters one entry past", mut(0, p_base=ACC.prm_depth - -(-n_out // n) + 1), 0),
        ("parameter base 2**32 - 1", mut(0, p_base=top), 0),
    ]
    chan = [(0, 0)] * ACC.n_desc

    async def body(drv):
        await drv.load_program(prog)
        await drv.load_image(image_bytes(prog, images[0]))
        await drv.set_width(width)
        got = []
        for name, descs, first in cases:
            for j, d in enumerate(descs):
                for i, word in enumerate(encode_descriptor(d)):
                    await drv.bus.write32(DESC_BASE + DESC_STRIDE * j + 4 * i, word)
            await drv.start(first, 1)
            st = await drv.wait(max_polls=2000)
            got.append((name, st, plan_run(descs, chan, ACC, first, 1, width)))
        return got

    got = run_sim(ACC, body)
    assert sorted({plan.error for _, _, plan in got}) == [0, Error.BAD_SHAPE], "cases on both sides"
    for name, st, plan in got:
        assert st["busy"] == 0 and st["error"] == int(plan.error != 0), f"{name}: status {st}"
        assert st["error_code"] == plan.error, f"{name}: code {st['error_code']}, expected {plan.error}"
