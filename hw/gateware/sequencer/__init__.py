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

The parts, one module each, run in ``Sequencer.PARTS`` order (the order matters where two parts
assign one register: the later assignment wins, and a failure's clears, in ``fsm``, win over all):

=============  ===========================================================================
``fields``     the descriptor's fields (latched in FETCH) and every register DECODE derives
``iterator``   the chunk iterators ``cur`` (the chunk streamed) and ``ld`` (the one loading)
``loader``     the weight loader: N rows into the array's shadow registers per chunk
``issue``      SETUP and STREAM: coordinates, bounds, read addresses, tags, the array's input
``decode``     DECODE's work, one product or check per cycle under the one-hot ``dsel``
``fsm``        the state machine: FETCH, DECODE, PRELOAD, SETUP, STREAM, DRAIN; errors, ABORT
``output``     accumulate, requantize, pool and write (or the logits)
``counters``   the performance counters' increments
=============  ===========================================================================
"""
from amaranth import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..array import SystolicArray
from ..postproc import Requant
from ...contract.params import check_sequencer_size
from ...contract.regmap import descriptor_layout, register_layout, regmap
from ...contract.schedule import ARRAY_LATENCY, READ_LATENCY, REQ_LATENCY
from . import counters, decode, fields, fsm, issue, iterator, loader, output
from .context import Context

__all__ = ["Sequencer"]


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

    PARTS = (fields, iterator, loader, issue, decode, fsm, output, counters)

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

        ctx = Context()
        ctx.give(locals(), "AI AO GM ICH LOGN N acc_rd acc_wr arr cfg line_rd line_wr req")
        for part in self.PARTS:
            part.build(m, self, platform, ctx)
        return m
