// chanscale's native RTL harness: the Verilated accelerator driven by a script of AXI4-Lite
// transactions, with no Python in the per-cycle loop (sim/native.py writes the script by running
// the host's own driver against a recording bus, and reads the results back into it).
//
// Script (little-endian uint32): header  MAGIC, status_addr, done_mask, busy_mask, max_polls,
// n_ops; then n_ops ops of three words (kind, addr, data):
//   OP_WRITE: write data to addr;
//   OP_READ:  read addr, append the value to the output;
//   OP_WAIT:  read STATUS (status_addr) until DONE is set and BUSY clear, at most max_polls
//             reads, then append the last STATUS value.
// Output (argv[2]): the appended uint32 values. stdout: one JSON line with the simulated cycles
// and the wall time. Exit status 0; 3 when a wait runs out of polls, 4 on a bus error response
// (SLVERR, DECERR), 2 on a bad script; each with one line on stderr naming the op.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "Vtop.h"
#include "verilated.h"

static const uint32_t MAGIC = 0x31564353;  // "CSV1"
enum { OP_WRITE = 1, OP_READ = 2, OP_WAIT = 3 };

struct Harness {
    Vtop* t;
    uint64_t cycles = 0;

    // A rising edge. The falling edge is evaluated by the next eval(), which every transaction
    // does after setting its inputs anyway (one evaluation fewer per cycle).
    void tick() {
        t->clk = 1;
        t->eval();
        t->clk = 0;
        ++cycles;
    }

    // One write: AW and W offered together, B accepted at once. Returns BRESP.
    int write(uint32_t addr, uint32_t data) {
        t->s_axil_awaddr = addr;
        t->s_axil_awvalid = 1;
        t->s_axil_wdata = data;
        t->s_axil_wstrb = 0xF;
        t->s_axil_wvalid = 1;
        t->s_axil_bready = 1;
        bool aw = false, w = false;
        for (;;) {
            t->eval();  // the readies follow the valids combinationally
            bool awr = t->s_axil_awready, wr = t->s_axil_wready, bv = t->s_axil_bvalid;
            int resp = t->s_axil_bresp;
            tick();  // the handshakes happen at this edge
            if (!aw && awr) { aw = true; t->s_axil_awvalid = 0; }
            if (!w && wr) { w = true; t->s_axil_wvalid = 0; }
            if (bv) { t->s_axil_bready = 0; return resp; }
        }
    }

    // One read: AR offered, R accepted at once. Returns RRESP; the word in *value.
    int read(uint32_t addr, uint32_t* value) {
        t->s_axil_araddr = addr;
        t->s_axil_arvalid = 1;
        t->s_axil_rready = 1;
        for (;;) {
            t->eval();
            bool arr = t->s_axil_arready, rv = t->s_axil_rvalid;
            uint32_t data = t->s_axil_rdata;
            int resp = t->s_axil_rresp;
            tick();
            if (arr) t->s_axil_arvalid = 0;
            if (rv) { t->s_axil_rready = 0; *value = data; return resp; }
        }
    }
};

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s SCRIPT OUTPUT\n", argv[0]);
        return 2;
    }
    FILE* f = std::fopen(argv[1], "rb");
    if (!f) { std::fprintf(stderr, "error: cannot open script %s\n", argv[1]); return 2; }
    uint32_t head[6];
    if (std::fread(head, 4, 6, f) != 6 || head[0] != MAGIC) {
        std::fprintf(stderr, "error: %s is not a chanscale harness script\n", argv[1]);
        return 2;
    }
    const uint32_t status_addr = head[1], done_mask = head[2], busy_mask = head[3], max_polls = head[4];
    std::vector<uint32_t> ops(3 * (size_t)head[5]);
    if (std::fread(ops.data(), 4, ops.size(), f) != ops.size()) {
        std::fprintf(stderr, "error: script %s is truncated\n", argv[1]);
        return 2;
    }
    std::fclose(f);

    Verilated::commandArgs(argc, argv);
    Harness h;
    h.t = new Vtop;
    h.t->clk = 0;
    h.t->rst = 1;
    h.t->s_axil_awvalid = h.t->s_axil_wvalid = h.t->s_axil_arvalid = 0;
    h.t->s_axil_bready = h.t->s_axil_rready = 0;
    h.t->s_axil_awprot = h.t->s_axil_arprot = 0;
    h.t->eval();
    for (int i = 0; i < 4; ++i) { h.tick(); h.t->eval(); }
    h.t->rst = 0;
    for (int i = 0; i < 2; ++i) { h.t->eval(); h.tick(); }
    const uint64_t c0 = h.cycles;

    std::vector<uint32_t> out;
    out.reserve(ops.size() / 3);
    auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < ops.size() / 3; ++i) {
        uint32_t kind = ops[3 * i], addr = ops[3 * i + 1], data = ops[3 * i + 2], value = 0;
        int resp = 0;
        if (kind == OP_WRITE) {
            resp = h.write(addr, data);
        } else if (kind == OP_READ) {
            resp = h.read(addr, &value);
            out.push_back(value);
        } else if (kind == OP_WAIT) {
            uint32_t polls = 0;
            do {
                resp = h.read(status_addr, &value);
                if (resp) break;
            } while ((!(value & done_mask) || (value & busy_mask)) && ++polls < max_polls);
            if (!resp && polls >= max_polls) {
                std::fprintf(stderr, "error: op %zu: the accelerator did not finish within %u STATUS polls\n", i,
                             max_polls);
                return 3;
            }
            out.push_back(value);
        } else {
            std::fprintf(stderr, "error: op %zu: unknown kind %u\n", i, kind);
            return 2;
        }
        if (resp) {
            std::fprintf(stderr, "error: op %zu (%s 0x%05x): bus response %d\n", i, kind == OP_WRITE ? "write" : "read",
                         kind == OP_WAIT ? status_addr : addr, resp);
            return 4;
        }
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    FILE* o = std::fopen(argv[2], "wb");
    if (!o || std::fwrite(out.data(), 4, out.size(), o) != out.size()) {
        std::fprintf(stderr, "error: cannot write %s\n", argv[2]);
        return 2;
    }
    std::fclose(o);
    std::printf("{\"cycles\": %llu, \"seconds\": %.6f, \"ops\": %zu}\n", (unsigned long long)(h.cycles - c0), secs,
                ops.size() / 3);
    h.t->final();
    delete h.t;
    return 0;
}
