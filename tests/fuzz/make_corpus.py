#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer harnesses (tests/fuzz/corpus/).

    python3 tests/fuzz/make_corpus.py [OUTDIR]     (default: tests/fuzz/corpus)

Seeds for protocol, options, boot and hart are made here: JSON requests,
argument lists, a minimal RISC-V Linux Image, a minimal ELF64 program with
tohost/fromhost symbols, raw code, instruction sequences. The snapshot
seeds need a real image, which the harness itself writes:

    FUZZ_SNAPSHOT_SEEDS=tests/fuzz/corpus/snapshot build-fuzz/tests/fuzz/fuzz_snapshot

Each seed's name says what it is; the first byte of a boot, hart or
snapshot seed is the harness's mode byte (see the harness's comment)."""
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
RAM = 0x80000000


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- a few RV64 encodings ----
def r(f7, rs2, rs1, f3, rd, op): return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op
def i(imm, rs1, f3, rd, op): return (imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op
def s(imm, rs2, rs1, f3): return ((imm >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (imm & 0x1f) << 7 | 0x23
def u(imm20, rd, op): return (imm20 & 0xfffff) << 12 | rd << 7 | op
def addi(rd, rs1, imm): return i(imm, rs1, 0, rd, 0x13)
def csr(f3, num, rs1, rd): return i(num, rs1, f3, rd, 0x73)
def j(off):
    o = off & 0x1fffff
    return ((o >> 20) & 1) << 31 | ((o >> 1) & 0x3ff) << 21 | ((o >> 11) & 1) << 20 | ((o >> 12) & 0xff) << 12 | 0x6f
ECALL, EBREAK, MRET, SRET, WFI, FENCE_I = 0x73, 0x100073, 0x30200073, 0x10200073, 0x10500073, 0x100f
J_SELF = j(0)


def words(*ws): return b"".join(struct.pack("<I", w & 0xffffffff) for w in ws)
def halves(*hs): return b"".join(struct.pack("<H", h) for h in hs)


# ---- protocol: one request line each ----
requests = {
    "list": '{"op": "list"}',
    "memory": '{"op":"memory"}',
    "shutdown": '{"op":"shutdown"}',
    "start": '{"op": "start", "name": "vm1"}',
    "stats": '{"op":"stats","name":"a.b-c_9"}\r',
    "console": '{"op": "console", "name": "vm1"}',
    "create-min": '{"op": "create", "name": "vm1", "kernel": "/boot/Image"}',
    "create-all": '{"op": "create", "name": "vm1", "kernel": "/k/Image", "initrd": "/k/initrd.gz", '
                  '"append": "console=ttyS0 quiet", "mem": "256M", "cpus": 2, "shares": 1000, "cap": 50, '
                  '"bios": null, "drives": ["file=/d/disk.img,readonly=on,serial=d0"], '
                  '"nets": ["user,hostfwd=tcp::2222-:22,mac=52:54:00:12:34:56"], "console": "virtio", '
                  '"balloon": false, "engine": "interp", "jit_cache": "32M", "share_group": "web", '
                  '"mem_shares": 2000, "mem_min": "64M"}',
    "create-bios": '{"op":"create","name":"fw","bios":"/fw/fw.elf","mem":268435456,"engine":"jit","jit_cache":null}',
    "balloon": '{"op": "balloon", "name": "vm1", "target": "128M"}',
    "balloon-int": '{"op": "balloon", "name": "vm1", "target": 134217728}',
    "snapshot": '{"op": "snapshot", "name": "vm1", "file": "/tmp/vm1.snap", "stop": false}',
    "restore": '{"op": "restore", "name": "vm2", "file": "/tmp/vm1.snap", "paused": true}',
    "migrate": '{"op": "migrate", "name": "vm1", "uri": "tcp:127.0.0.1:4444", "downtime_ms": 300}',
    "escapes": '{"op": "create", "name": "vm1", "kernel": "/k/\\u00e9\\n", "append": "a\\"b\\\\c"}',
    "number": '{"op": "create", "name": "vm1", "kernel": "/k", "cpus": 1e0, "mem": -1}',
}
for name, line in requests.items():
    put("protocol", name, line)

# ---- options: arguments separated by NUL ----
def argv(*a): return "\0".join(a)
option_lines = {
    "run-all": argv("--kernel", "/boot/Image", "--initrd", "/boot/initrd", "--append", "console=ttyS0",
                    "--mem", "256M", "--cpus", "2", "--machine-mem", "1G", "--stats",
                    "--drive", "file=disk.img,readonly=on,serial=abc",
                    "--net", "user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-10.0.2.15:53,mac=52:54:00:12:34:56",
                    "--console", "virtio", "--no-balloon", "--engine", "jit", "--jit-cache", "64M", "--no-sandbox"),
    "run-bios": argv("--bios", "fw.elf", "--mem=1G", "--net", "tap=tap0,mac=02:00:00:00:00:01", "--engine=interp"),
    "run-drive-commas": argv("--kernel", "k", "--drive", "file=a,,b.img,readonly=off", "--mem", "65536K"),
    "run-help": argv("-h"),
    "run-bad": argv("--kernel", "k", "--cpus", "0x10", "--mem", "1GiB", "extra"),
    "serve-all": argv("--socket", "/tmp/s.sock", "--machine-mem", "2G", "--workers", "4", "--sharing", "off",
                      "--share-rate", "1000", "--swap", "on", "--swap-dir", "/var/tmp", "--idle-tax", "75",
                      "--sample-period", "0.5", "--incoming", "tcp::4444", "--no-sandbox"),
    "serve-help": argv("--help"),
    "sizes": argv("256", "256M", "1G", "4096K", "1MiB", "2MB", "18446744073709551615", "17179869184G"),
}
for name, line in option_lines.items():
    put("options", name, line)

# ---- boot: mode byte, then the file ----
def image(code):
    """A RISC-V Linux Image: the 64-byte header (its first word jumps over
    it; image_size 0: the file's; magic "RISCV", magic2 "RSC\\x05"), then code."""
    hdr = words(j(64), 0) + struct.pack("<QQQIIQQII", 0, 0, 0, 2, 0, 0, 0x5643534952, 0x05435352, 0)
    assert len(hdr) == 64
    return hdr + code

# SBI console putchar (legacy extension 1) of 'k', then a debug-console write, then SRST shutdown.
kernel_code = words(addi(17, 0, 1), addi(10, 0, ord("k")), ECALL,
                    u(0x44424, 17, 0x37), addi(17, 17, 0x34e), addi(10, 0, 1), u(RAM >> 12, 11, 0x37), addi(12, 0, 0), ECALL,
                    u(0x53525, 17, 0x37), addi(17, 17, 0x354), addi(10, 0, 0), addi(11, 0, 0), addi(16, 0, 0), ECALL,
                    J_SELF)
kernel = image(kernel_code)


def elf(code, entry=RAM, tohost=RAM + 0x1000):
    """ELF64 RISC-V: one PT_LOAD of code at entry, a .symtab with tohost and fromhost."""
    ehsize, phsize, shsize = 64, 56, 64
    code_off = ehsize + phsize
    strtab = b"\0tohost\0fromhost\0"
    sym = lambda name, value: struct.pack("<IBBHQQ", name, 0x10, 0, 1, value, 8)
    symtab = b"\0" * 24 + sym(1, tohost) + sym(8, tohost + 0x40)
    shstr = b"\0.text\0.symtab\0.strtab\0.shstrtab\0"
    body = code.ljust((len(code) + 7) & ~7, b"\0")
    symtab_off = code_off + len(body)
    strtab_off = symtab_off + len(symtab)
    shstr_off = strtab_off + len(strtab)
    sh_off = (shstr_off + len(shstr) + 7) & ~7
    eh = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8 + struct.pack(
        "<HHIQQQIHHHHHH", 2, 243, 1, entry, ehsize, sh_off, 0, ehsize, phsize, 1, shsize, 5, 4)
    ph = struct.pack("<IIQQQQQQ", 1, 7, code_off, entry, entry, len(code), 0x2000, 0x1000)
    sh = b"\0" * shsize
    sh += struct.pack("<IIQQQQIIQQ", 1, 1, 6, entry, code_off, len(code), 0, 0, 4, 0)
    sh += struct.pack("<IIQQQQIIQQ", 7, 2, 0, 0, symtab_off, len(symtab), 3, 1, 8, 24)
    sh += struct.pack("<IIQQQQIIQQ", 15, 3, 0, 0, strtab_off, len(strtab), 0, 0, 1, 0)
    sh += struct.pack("<IIQQQQIIQQ", 23, 3, 0, 0, shstr_off, len(shstr), 0, 0, 1, 0)
    out = eh + ph + body + symtab + strtab + shstr
    return out.ljust(sh_off, b"\0") + sh

def li_ram(rd, off):
    """rd = RAM + off (lui would sign-extend 0x80000000)."""
    return [addi(rd, 0, 1), i(31, rd, 1, rd, 0x13), addi(rd, rd, off)]

# Bare metal: mtvec at a handler that reports failure; write 1 (pass) to tohost.
bios_code = words(*li_ram(5, 0x40), csr(1, 0x305, 5, 0),                       # mtvec = RAM + 0x40
                  addi(10, 0, 1), *li_ram(6, 0), u(1, 7, 0x37), r(0, 7, 6, 0, 6, 0x33),
                  s(0, 10, 6, 3), J_SELF).ljust(0x40, b"\0") + words(addi(10, 0, 3), *li_ram(6, 0), u(1, 7, 0x37),
                                                                    r(0, 7, 6, 0, 6, 0x33), s(0, 10, 6, 3), J_SELF)
put("boot", "kernel-sbi", b"\0" + kernel)
put("boot", "bios-elf", b"\1" + elf(bios_code))
put("boot", "bios-raw", b"\1" + bios_code)
put("boot", "initrd-cpio", b"\2" + b"070701" + b"0" * 96 + b"TRAILER!!!\0\0")
put("boot", "bios-elf-kernel", b"\3" + elf(words(csr(2, 0xf14, 0, 10), addi(5, 0, 0), J_SELF)))

# ---- hart: set-up byte, then code ----
M, S, U, SBI, FP, IRQ, DELEG = 2, 1, 0, 4, 8, 16, 32
programs = {
    "m-int": (M, words(addi(10, 0, 5), r(0, 10, 10, 0, 11, 0x33), r(1, 11, 10, 4, 12, 0x33),   # add, div
                       i(8, 1, 3, 13, 0x03), s(16, 13, 1, 3), r(0, 10, 1, 2, 14, 0x2f),       # ld, sd, amoadd.w
                       i(0, 1, 2, 15, 0x03), r(0b0001000, 0, 1, 3, 6, 0x2f), r(0b0001100, 6, 1, 3, 7, 0x2f),  # lr.d, sc.d
                       csr(2, 0x300, 0, 5), csr(2, 0xc00, 0, 6), ECALL, J_SELF)),
    "m-fp": (M | FP, words(addi(10, 0, 3), r(0b1101001, 0, 10, 7, 1, 0x53),      # fcvt.d.l f1, a0
                           r(0b0000001, 1, 1, 7, 2, 0x53), r(0b0001101, 1, 2, 7, 3, 0x53),  # fadd.d, fdiv.d
                           r(0b0101101, 0, 3, 7, 4, 0x53), csr(2, 0x003, 0, 5), J_SELF)),  # fsqrt.d, frcsr
    "m-compressed": (M, halves(0x4515, 0x0505, 0x952a, 0x8d0d, 0x6585, 0xc188, 0x4188, 0x9002, 0xa001)),
    "m-devices": (M, words(addi(5, 0, 0x41), s(0, 5, 16, 0), i(5, 16, 4, 6, 0x03),  # UART THR, LSR
                           i(0, 17, 2, 7, 0x03), s(4, 7, 17, 2),                     # CLINT msip
                           i(0, 20, 2, 8, 0x03), i(0x70, 20, 2, 9, 0x03),  # virtio magic, status
                           s(0, 5, 22, 2), J_SELF)),                           # syscon
    "s-sbi": (S | SBI, words(addi(17, 0, 0x10), addi(16, 0, 0), ECALL,            # sbi_get_spec_version
                             addi(17, 0, 1), addi(10, 0, ord("s")), ECALL,         # legacy putchar
                             WFI, SRET, J_SELF)),
    # satp = Sv39 with its root table at the start of RAM (the code itself), then a load through it.
    "s-paging": (S | DELEG, words(addi(5, 0, 8), i(60, 5, 1, 5, 0x13), addi(6, 0, 1), i(19, 6, 1, 6, 0x13),
                                  r(0, 6, 5, 6, 5, 0x33), csr(1, 0x180, 5, 0), r(0b0001001, 0, 0, 0, 0, 0x73),
                                  i(0, 1, 3, 8, 0x03), J_SELF)),
    "u-traps": (U | IRQ, words(EBREAK, ECALL, 0xffffffff, csr(2, 0x300, 0, 5), MRET, FENCE_I, J_SELF)),
    "m-irq": (M | IRQ, words(addi(5, 0, 1), s(0, 5, 17, 2), WFI, csr(2, 0x344, 0, 6), MRET, J_SELF)),  # msip -> MSI
}
for name, (cfg, code) in programs.items():
    put("hart", name, bytes([cfg]) + code)

# ---- virtio: slot, queue size, feature mask, commands, guest memory ----
def desc(addr, length, flags=0, nxt=0): return struct.pack("<QIHH", addr, length, flags, nxt)
NEXT, WRITE, INDIRECT = 1, 2, 4
BUF = 0x1400  # free for buffers in the harness's layout (up to 0x1fff)


def virtio_seed(slot, chains, cmds, bufs, qsize_log2=4, mask=0xffffffffffffffff):
    """chains: {queue: [[descriptor, ...] per chain]}; bufs: {offset: bytes}."""
    mem = bytearray(BUF)
    end = BUF
    for off, b in bufs.items():
        end = max(end, off + len(b))
    mem = mem.ljust(end, b"\0")
    for q, qchains in chains.items():
        n = 0
        ring = []
        for chain in qchains:
            ring.append(n)
            for d in chain:
                mem[q * 0x400 + 16 * n:q * 0x400 + 16 * n + 16] = d
                n += 1
        avail = struct.pack("<HH", 0, len(ring)) + b"".join(struct.pack("<H", h) for h in ring)
        mem[0x1000 + q * 0x100:0x1000 + q * 0x100 + len(avail)] = avail
    for off, b in bufs.items():
        mem[off:off + len(b)] = b
    head = bytes([slot, qsize_log2]) + struct.pack("<Q", mask) + bytes([len(cmds)])
    return head + b"".join(struct.pack("<BBHI", *c) for c in cmds) + bytes(mem)

def notify(q): return (0, q, 0, 0)
def a(off): return RAM + off

put("virtio", "rng", virtio_seed(0, {0: [[desc(a(BUF), 64, WRITE)], [desc(a(BUF + 64), 16, WRITE)]]}, [notify(0)], {}))
pfns = b"".join(struct.pack("<I", (RAM >> 12) + f) for f in (3, 4))
put("virtio", "balloon-inflate-deflate",
    virtio_seed(1, {0: [[desc(a(BUF), 8)]], 1: [[desc(a(BUF), 4)]], 2: [[desc(a(BUF + 0x100), 60)]]},
                [notify(0), notify(1), notify(2), (1, 0, 0x100, 1)], {BUF: pfns}))
put("virtio", "console-tx-rx",
    virtio_seed(2, {0: [[desc(a(BUF + 0x100), 32, WRITE)]], 1: [[desc(a(BUF), 5)]],
                    2: [[desc(a(BUF + 0x200), 8, WRITE)]], 3: [[desc(a(BUF + 0x300), 8)]]},
                [notify(1), (4, 4, 0, 0x6c6c6568), notify(0)], {BUF: b"hello"}))
blk_hdr = lambda t, sector: struct.pack("<IIQ", t, 0, sector)
put("virtio", "blk-read",
    virtio_seed(3, {0: [[desc(a(BUF), 16, 0 | NEXT, 1), desc(a(BUF + 0x200), 512, WRITE | NEXT, 2),
                         desc(a(BUF + 0x600), 1, WRITE)]]}, [notify(0)], {BUF: blk_hdr(0, 1)}))
put("virtio", "blk-write-flush-id",
    virtio_seed(3, {0: [[desc(a(BUF), 16, NEXT, 1), desc(a(BUF + 0x200), 512, NEXT, 2), desc(a(BUF + 0x600), 1, WRITE)],
                        [desc(a(BUF + 0x10), 16, NEXT, 4), desc(a(BUF + 0x601), 1, WRITE)],
                        [desc(a(BUF + 0x20), 16, NEXT, 6), desc(a(BUF + 0x400), 20, WRITE | NEXT, 7),
                         desc(a(BUF + 0x602), 1, WRITE)]]},
                [notify(0)], {BUF: blk_hdr(1, 2) + blk_hdr(4, 0) + blk_hdr(8, 0), BUF + 0x200: b"\xab" * 512}))
# An indirect table: one queue descriptor pointing at a table of three.
indirect = desc(a(BUF), 16, NEXT, 1) + desc(a(BUF + 0x200), 512, WRITE | NEXT, 2) + desc(a(BUF + 0x600), 1, WRITE)
put("virtio", "blk-indirect",
    virtio_seed(3, {0: [[desc(a(BUF + 0x700), len(indirect), INDIRECT)]]}, [notify(0)],
                {BUF: blk_hdr(0, 0), BUF + 0x700: indirect}))
# A read into a frame never written (0x3000: past the image), first while
# machine memory is exhausted (command 7, arg 1: the request waits), then
# with memory back.
put("virtio", "blk-read-starved",
    virtio_seed(3, {0: [[desc(a(BUF), 16, 0 | NEXT, 1), desc(a(0x3000), 512, WRITE | NEXT, 2),
                         desc(a(BUF + 0x600), 1, WRITE)]]},
                [(7, 1, 0, 0), notify(0), (7, 0, 0, 0), notify(0)], {BUF: blk_hdr(0, 1)}))
print("seeds written to", OUT)
