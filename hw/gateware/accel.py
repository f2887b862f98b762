"""chanscale accelerator top level: AXI4-Lite control and memory windows, on-chip buffers, the
layer sequencer with its systolic array, and the performance counters.

While idle, the bus owns every buffer (load weights, parameters and the image, read the logits
or any activation); while busy the sequencer owns them and bus accesses to a window answer
SLVERR. One START runs the descriptors FIRST_LAYER .. FIRST_LAYER+NUM_LAYERS-1; changing width
between images is a write of WIDTH (uniform) or of the CHAN registers (per layer), with no reload.
"""
from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .axil import ControlBus
from .dsp import ecp5_dsp, reg_copy
from ..contract.params import ArrayConfig, check_sequencer_size
from ..contract.regmap import COUNTERS
from .sequencer import Sequencer
from ..contract.schedule import BUF_A, BUF_B, READ_LATENCY, SRC_IMAGE

__all__ = ["Accelerator"]

# buffer-access counters fed by bus window accesses as well as by the sequencer
_BUS_COUNTED = {"image": "IMG", "act_a": "ACTA", "act_b": "ACTB", "weights": "WGT", "params": "PRM",
                "logits": "LOGIT"}


def buffer_memory(width: int, depth: int) -> Memory:
    """A buffer shared by the bus and the sequencer (one address for its write and read port,
    ``shared_address``), marked ``no_rw_check``: a read in the cycle of a write to the same
    address returns an undefined word. No one uses such a word: the bus reads or writes a window,
    one access at a time, and reads its word back two cycles after the read with the address
    held; the sequencer never reads the activation buffer it writes, nor writes the weights, the
    parameters or the image. Without the attribute Yosys keeps the read's old-data semantics on a
    write in logic wherever the block RAM's mode cannot give it (the 512-bit parameter memory in
    the 36-bit, pseudo-dual-port mode of the DP16KD: a write delayed a cycle, an address compare
    and a bypass multiplexer per bit, and a hold multiplexer for the read enable; ~1,000 LUT4
    and ~1,150 FF on a 64 x 512 memory alone, on a path that limits the 8x8's Fmax on the ECP5)."""
    return Memory(shape=unsigned(width), depth=depth, init=[], attrs={"no_rw_check": 1})


class Accelerator(wiring.Component):
    """The whole accelerator; its only ports are the clock/reset domain and the AXI4-Lite slave.

    Parameters
    ----------
    cfg : ArrayConfig
        Geometry and buffer depths (default 8x8).

    Members
    -------
    s_axil_* : AXI4-Lite slave (32-bit data, ``cfg.addr_bits`` address), names as cocotbext-axi's
        ``AxiLiteBus.from_prefix(dut, "s_axil")`` expects.
    irq : Out(1)
        STATUS.DONE, for designs that want an interrupt.
    """

    def __init__(self, cfg: ArrayConfig | None = None):
        cfg = ArrayConfig() if cfg is None else cfg
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"Accelerator takes an ArrayConfig, got {cfg!r}")
        check_sequencer_size(cfg.rows)
        self._cfg = cfg
        self._bus = ControlBus(cfg)
        sig = {name: port for name, port in self._bus.signature.members.items() if name.startswith("s_axil_")}
        sig["irq"] = Out(1)
        super().__init__(sig)

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        N = cfg.rows
        m.submodules.bus = bus = self._bus
        m.submodules.seq = seq = Sequencer(cfg)
        for name in self.signature.members:
            if name.startswith("s_axil_"):
                port, inner = getattr(self, name), getattr(bus, name)
                if self.signature.members[name].flow == In:
                    m.d.comb += inner.eq(port)
                else:
                    m.d.comb += port.eq(inner)

        # Who owns the buffers: the sequencer while `own` is 1, else the bus. `own` is `busy` a
        # cycle late, as registers of their own next to each consumer (the bus's window decode,
        # each memory's multiplexers), so no one net crosses the die from the sequencer to every
        # block RAM. A cycle late is safe both ways: the sequencer touches no buffer in its first
        # FETCH/DECODE cycles, and the bus answers SLVERR for one more cycle after busy falls.
        busy = seq.busy

        def own(name):
            return reg_copy(m, f"own_{name}", busy, platform)

        m.d.comb += [bus.busy.eq(own("bus")), bus.status_busy.eq(busy), bus.status_done.eq(seq.done),
                     bus.status_error.eq(seq.error), bus.status_code.eq(seq.code),
                     bus.status_layer.eq(seq.layer), self.irq.eq(seq.done)]
        m.d.comb += [seq.start.eq(bus.start), seq.abort.eq(bus.abort), seq.first_layer.eq(bus.first_layer),
                     seq.num_layers.eq(bus.num_layers), seq.width.eq(bus.width),
                     seq.chan.eq(bus.chan), bus.desc_idx.eq(seq.desc_idx), seq.desc.eq(bus.desc)]

        bus_acc = {}  # window -> (read, write) strobes for the counters

        def counted(strobe, name):
            """A bus access strobe for the counters, registered (an access is counted one cycle
            after it). The bus strobes only while it owns the buffers."""
            late = Signal(name=name)
            m.d.sync += late.eq(strobe)
            return late

        def layer_enable(name, per_pixel, on):
            """A sequencer read enable: ``per_pixel`` in the portable RTL; on the ECP5 target a
            register next to the memory loading ``on`` (see ``window_memory``)."""
            return per_pixel if ecp5_dsp(platform) is None else reg_copy(m, f"{name}_rd_on", on, platform)

        def word_register(rd, name):
            """The read port's word in a register of its own, loading every cycle (no enable, no
            reset): a block RAM's clock-to-output is slow (5.83 ns on an ECP5-6, more than half of
            a 10 ns cycle), so the word goes into a flip-flop first and only then through any
            select, mask or wire across the die (READ_LATENCY in hw/contract/schedule.py: a read's word is
            there two cycles after its address; a memory's output holds after a read, so the
            register holds too while nothing is read)."""
            q = Signal(len(rd.data), name=f"{name}_word", reset_less=True)
            m.d.sync += q.eq(rd.data)
            return q

        def shared_address(wr, rd, addr, name=None):
            """One address for a buffer's write port and its read port. No buffer is read and
            written in the same cycle by different owners: the bus writes only while it owns the
            buffer, the sequencer reads one activation buffer and writes the other. With one
            address, Yosys maps both ports onto one port of each block RAM (read-before-write,
            the read port's semantics); with two, it keeps the ports apart and emulates the
            read's old data on a same-address write in logic: a write delayed a cycle, an
            address compare and a bypass multiplexer in front of the read word, a path long enough
            to set the 8x8's Fmax on the ECP5. Where
            the block RAM's mode has no read-before-write port (the parameter memory's 36-bit
            pseudo-dual-port mode) the emulation stayed even so; ``buffer_memory``'s
            ``no_rw_check`` removes it there."""
            a = Signal(len(rd.addr), name=None if name is None else f"{name}_addr")
            m.d.comb += [a.eq(addr), rd.addr.eq(a), wr.addr.eq(a)]

        def window_memory(name, mem, read_addr=None, read_en=None, layer_reads=None):
            """Bus write port (byte enables) and one read port shared with the sequencer (read
            address ``read_addr``, enable ``read_en``); returns (write port, read port, owner).

            ``layer_reads``: whether the running layer reads this memory. On the ECP5 target the
            port then reads every cycle while such a layer runs or while the bus owns the
            memory, so its enable is one register next to the memory instead of the per-pixel
            ``read_en`` (the sequencer masks the reads it does not use: out of bounds, nothing
            issued; the bus's address holds from its capture to its read-back). The portable
            RTL keeps the per-pixel enable, the reads the counters and the energy model count.

            The read word goes through a register right behind the memory (``word_register``)
            before anyone uses it, bus or sequencer: returns (write port, read word, owner).

            The write port and the read port share one address (``shared_address``)."""
            wr = mem.write_port(granularity=8)
            rd = mem.read_port()
            bus_addr, bus_re = getattr(bus, f"{name}_addr"), getattr(bus, f"{name}_re")
            # the bus writes and reads only while it owns the buffers (SLVERR otherwise)
            m.d.comb += [wr.data.eq(getattr(bus, f"{name}_wdata")), wr.en.eq(getattr(bus, f"{name}_wen"))]
            owner = None
            if read_addr is None:
                shared_address(wr, rd, bus_addr)
                m.d.comb += rd.en.eq(bus_re)
            else:
                owner = own(name)
                shared_address(wr, rd, Mux(owner, read_addr, bus_addr), name)
                m.d.comb += rd.en.eq(read_en | bus_re if layer_reads is None
                                     else layer_enable(name, read_en | bus_re, ~busy | layer_reads))
            q = word_register(rd, name)
            m.d.comb += getattr(bus, f"{name}_rdata").eq(q)
            bus_acc[name] = (counted(bus_re, f"{name}_counted_rd"),
                             counted(getattr(bus, f"{name}_wen") != 0, f"{name}_counted_wr"))
            return wr, q, owner

        # image: one replica per array row, each written by the bus, row r reading replica r
        # (replica 0's read port is shared with the bus). One memory with N read ports would
        # come to the same block RAMs, but Yosys' memory_libmap searches port assignments
        # exhaustively and runs out of memory on 17 ports (16x16).
        # A word holds img_pack pixels (one bus write carries as many as fit in 32 bits): the
        # sequencer's pixel address splits into the word (high bits) and the lane (low bits); the
        # lane follows the read to its word register (captured with the read, then one register
        # behind it, like the word) and selects the pixel there.
        pack, ich = cfg.img_pack, cfg.img_channels
        lane_bits = (pack - 1).bit_length()

        def pixel_of(r, q):
            if pack == 1:
                return q
            lane = [Signal(lane_bits, name=f"image{r}_lane{k}") for k in range(READ_LATENCY)]
            with m.If(seq.img_re[r]):
                m.d.sync += lane[0].eq(seq.img_addr[r][:lane_bits])
            m.d.sync += [lane[k].eq(lane[k - 1]) for k in range(1, READ_LATENCY)]
            return q.word_select(lane[-1], 8 * ich)

        imgs = []
        for r in range(N):
            m.submodules[f"img_mem{r}"] = img = buffer_memory(8 * ich * pack, cfg.img_words)
            imgs.append(img)
        image_layer = seq.src_sel == SRC_IMAGE
        img_wr0, img_q0, _ = window_memory("image", imgs[0], seq.img_addr[0][lane_bits:], seq.img_re[0],
                                           layer_reads=image_layer)
        m.d.comb += seq.img_data[0].eq(pixel_of(0, img_q0))
        for r in range(1, N):
            wr, rd = imgs[r].write_port(granularity=8), imgs[r].read_port()
            shared_address(wr, rd, Mux(own(f"image{r}"), seq.img_addr[r][lane_bits:], bus.image_addr), f"image{r}")
            m.d.comb += [wr.data.eq(img_wr0.data), wr.en.eq(img_wr0.en),
                         seq.img_data[r].eq(pixel_of(r, word_register(rd, f"image{r}"))),
                         rd.en.eq(layer_enable(f"image{r}", seq.img_re[r], image_layer))]

        # activations: the sequencer reads one buffer and writes the other; the buffer's one
        # address is the sequencer's write address while it is the layer's destination (a
        # register next to the memory, a cycle behind the descriptor's field: nothing is read
        # or written in FETCH and DECODE), else its read address. Its write enable is a register
        # of its own too, loading the sequencer's next write enable for this buffer (``dst_sel``
        # holds through a layer and its drain), so no compare and no die-wide net sit between the
        # sequencer's output register and the block RAMs' write enables (with the compare,
        # ``seq.dst_sel -> act_b_mem`` took four LUTs and missed 10 ns on the ECP5-45F)
        acts = {}
        for name, sel in (("act_a", BUF_A), ("act_b", BUF_B)):
            m.submodules[f"{name}_mem"] = mem = buffer_memory(8 * N, cfg.act_depth)
            is_dst = reg_copy(m, f"{name}_is_dst", seq.dst_sel == sel, platform)
            wr, q, owner = window_memory(name, mem, Mux(is_dst, seq.dst_addr, seq.src_addr),
                                          seq.src_re & (seq.src_sel == sel), layer_reads=seq.src_sel == sel)
            we = reg_copy(m, f"{name}_dst_we", seq.dst_we_next & (seq.dst_sel == sel), platform)
            with m.If(owner):
                m.d.comb += [wr.data.eq(seq.dst_data), wr.en.eq(Mux(we, (1 << N) - 1, 0))]
            acts[sel] = q
        # the buffer the words in the registers were read from (read two cycles ago)
        src_sel_d = [Signal(2, name=f"src_sel_d{k}") for k in range(READ_LATENCY)]
        m.d.sync += [src_sel_d[0].eq(seq.src_sel)] + [src_sel_d[k].eq(src_sel_d[k - 1]) for k in range(1, READ_LATENCY)]
        m.d.comb += seq.src_data.eq(Mux(src_sel_d[-1] == BUF_B, acts[BUF_B], acts[BUF_A]))

        m.submodules.wgt_mem = wgt = buffer_memory(8 * N, cfg.wgt_depth)
        _, wq, _ = window_memory("weights", wgt, seq.w_addr, seq.w_re)
        m.d.comb += seq.w_data.eq(wq)
        m.submodules.prm_mem = prm = buffer_memory(64 * N, cfg.prm_depth)
        _, pq, _ = window_memory("params", prm, seq.p_addr, seq.p_re)
        m.d.comb += seq.p_data.eq(pq)

        # logits: registers written by the sequencer, read through the LOGITS window
        logits = [Signal(signed(32), name=f"logit{i}") for i in range(cfg.max_classes)]
        # o-tiles start at multiples of N, so class i only ever comes from lane i % N (no
        # N-way multiplexer per logit)
        for i in range(cfg.max_classes):
            c = i % N
            with m.If(seq.lg_we[c] & (seq.lg_base == i - c)):
                m.d.sync += logits[i].eq(seq.lg_data[c])
        lg_rdata = Signal(32)
        with m.If(bus.logits_re):
            m.d.sync += lg_rdata.eq(Cat(*logits).word_select(bus.logits_addr, 32))
        m.d.comb += bus.logits_rdata.eq(lg_rdata)
        bus_acc["logits"] = (counted(bus.logits_re, "logits_counted_rd"), 0)

        # LAYER_CYCLES, its write registered (a cycle after STATUS.DONE for the last layer; the
        # bus reads DONE and then the counts, each a transaction of several cycles)
        lc_we, lc_idx, lc_val = Signal(name="lc_we"), Signal.like(seq.lc_idx, name="lc_idx"), Signal(32, name="lc_val")
        m.d.sync += [lc_we.eq(seq.lc_we), lc_idx.eq(seq.lc_idx), lc_val.eq(seq.lc_val)]
        for jj in range(cfg.n_desc):
            with m.If(lc_we & (lc_idx == jj)):
                m.d.sync += bus.layer_cycles[jj].eq(lc_val)

        # performance counters (64 bit), cleared by CTRL.CLEAR_COUNTERS
        for name in COUNTERS:
            cnt = getattr(bus.counters, name.lower())
            inc = 0
            if name == "CYCLES":
                inc = 1
            elif name == "BUS_RD_BYTES":
                inc = bus.bus_rd_bytes
            elif name == "BUS_WR_BYTES":
                inc = bus.bus_wr_bytes
            else:
                if name in Sequencer.INC_FIELDS:
                    inc = getattr(seq.inc, name)
                for win, prefix in _BUS_COUNTED.items():
                    for k, suffix in enumerate(("_RD", "_WR")):
                        if name == prefix + suffix and not isinstance(bus_acc[win][k], int):
                            inc = inc + bus_acc[win][k]
            with m.If(bus.clear_counters):
                m.d.sync += cnt.eq(0)
            with m.Else():
                m.d.sync += cnt.eq(cnt + inc)
        return m
