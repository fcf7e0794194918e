/* Slow paths of guest-virtual memory access: software TLB misses, MMIO,
 * misaligned and page-crossing accesses, stores into frames holding decoded
 * code. On success a RAM page is entered in the software TLB so the next
 * access to it takes the inline fast path. */
#include "hart/mem.h"

#include "hart/code_cache.h"
#include "mmu/phys.h"

static int access_fault(enum access acc) {
    return acc == ACCESS_FETCH ? EXC_INSN_ACCESS : acc == ACCESS_WRITE ? EXC_STORE_ACCESS : EXC_LOAD_ACCESS;
}

static int page_fault(enum access acc) {
    return acc == ACCESS_FETCH ? EXC_INSN_PAGE_FAULT : acc == ACCESS_WRITE ? EXC_STORE_PAGE_FAULT : EXC_LOAD_PAGE_FAULT;
}

int mem_translate(struct hart *h, uint64_t va, enum access acc, int priv, uint64_t *gpa) {
    struct mmu_regime r = {
        .satp = h->satp,
        .priv = priv,
        .sum = (h->mstatus & MSTATUS_SUM) != 0,
        .mxr = (h->mstatus & MSTATUS_MXR) != 0,
    };
    switch (mmu_translate(h->phys, h->owner, &r, va, acc, gpa)) {
    case MMU_OK: return 0;
    case MMU_PAGE_FAULT: return page_fault(acc);
    case MMU_RETRY: return MEM_RETRY;
    case MMU_ACCESS_FAULT: break;
    }
    return access_fault(acc);
}

/* Raises the exception for cause, or stalls the hart if the access must
 * wait for memory. */
static void fail(struct hart *h, int cause, uint64_t tval) {
    if (cause == MEM_RETRY)
        hart_stall(h);
    else
        hart_raise(h, (uint64_t)cause, tval);
}

static bool crosses_page(uint64_t va, unsigned size) { return (va & ~PAGE_MASK) + size > PAGE_SIZE; }

/* A page-crossing access is done one byte at a time, which suits RAM only:
 * devices take naturally aligned accesses of their register's size, and
 * a byte of an 8-byte store must not reach the next page's device. So
 * both pages must translate (a page fault names the page that failed) and
 * be RAM, else the access faults with nothing done. */
static bool crossing_pages_ok(struct hart *h, uint64_t va, enum access acc) {
    uint64_t pages[2] = {va, (va | ~PAGE_MASK) + 1}, gpa[2];
    for (unsigned i = 0; i < 2; i++) {
        int cause = mem_translate(h, pages[i], acc, mem_data_priv(h), &gpa[i]);
        if (cause) {
            fail(h, cause, pages[i]);
            return false;
        }
    }
    for (unsigned i = 0; i < 2; i++) {
        struct phys_page pp = {0};
        if (h->phys->page(h->owner, gpa[i], false, &pp)) continue;
        if (pp.retry) {
            hart_stall(h);
            return false;
        }
        hart_raise(h, acc == ACCESS_WRITE ? EXC_STORE_ACCESS : EXC_LOAD_ACCESS, va);
        return false;
    }
    return true;
}

/* Loads or stores a page-crossing access one byte at a time; each byte
 * translates on its own so a fault reports the byte that faulted. */
static bool load_bytewise(struct hart *h, uint64_t va, unsigned size) {
    if (!crossing_pages_ok(h, va, ACCESS_READ)) return false;
    uint64_t v = 0;
    for (unsigned b = 0; b < size; b++) {
        uint8_t byte;
        if (!mem_load8(h, va + b, &byte)) return false;
        v |= (uint64_t)byte << (8 * b);
    }
    h->load_val = v;
    return true;
}

/* A TLB entry filled from a lookup must not outlive a move of the guest
 * frame that happened meanwhile: the mover bumps the generation, then
 * flushes every TLB; a filler that reads the generation before its lookup
 * and again after publishing its entry either sees the bump (and drops
 * the entry) or published before the flush (which drops it). */
static uint64_t remap_gen(const struct hart *h) {
    return h->remap_gen ? __atomic_load_n(h->remap_gen, __ATOMIC_SEQ_CST) : 0;
}

static void publish_checked(const struct hart *h, uint64_t *tag, uint64_t page, uint64_t gen) {
    __atomic_store_n(tag, page, __ATOMIC_SEQ_CST);
    if (remap_gen(h) != gen) __atomic_store_n(tag, TLB_INVALID, __ATOMIC_RELAXED);
}

bool mem_load_slow(struct hart *h, uint64_t va, unsigned size) {
    h->stats.tlb_misses++;
    if (crosses_page(va, size)) return load_bytewise(h, va, size);
    uint64_t gpa;
    uint64_t gen = remap_gen(h);
    int cause = mem_translate(h, va, ACCESS_READ, mem_data_priv(h), &gpa);
    if (cause) {
        fail(h, cause, va);
        return false;
    }
    struct phys_page pp = {0};
    bool ram = h->phys->page(h->owner, gpa, false, &pp);
    if (ram && pp.zero) {
        h->load_val = 0; /* a never-written frame; not cached (see struct phys_page) */
        return true;
    }
    if (ram) {
        struct tlb_entry *e = &h->dtlb->read[tlb_index(va)];
        e->addend = (uintptr_t)pp.host - (va & PAGE_MASK);
        tlb_note_fill(h->dtlb, TLB_READ, tlb_index(va));
        publish_checked(h, &e->tag, va & PAGE_MASK, gen);
        uint64_t v = 0;
        memcpy(&v, pp.host + (va & ~PAGE_MASK), size);
        h->load_val = v;
        return true;
    }
    uint64_t v;
    if (pp.retry) {
        hart_stall(h);
        return false;
    }
    h->stats.mmio++;
    if ((va & (size - 1)) == 0 && h->phys->mmio_read(h->owner, gpa, size, &v)) {
        /* Devices return size bytes; keep only those. */
        h->load_val = size < 8 ? v & ((1ull << (8 * size)) - 1) : v;
        return true;
    }
    hart_raise(h, EXC_LOAD_ACCESS, va);
    return false;
}

/* Enters a write TLB entry for va's page. A frame with a code page gets one
 * only while none of its slots is decoded: writable is published first and
 * the count read after, against decode_slot's count-then-read (SEQ_CST on
 * both sides); if a decoder took writable back meanwhile, the entry goes. */
static void map_for_writes(struct hart *h, uint64_t va, uint8_t *host, struct code_page *cp) {
    if (cp) {
        __atomic_store_n(&cp->writable, true, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&cp->live, __ATOMIC_SEQ_CST) != 0) return;
    }
    struct tlb_entry *e = &h->dtlb->write[tlb_index(va)];
    e->addend = (uintptr_t)host - (va & PAGE_MASK);
    __atomic_store_n(&e->tag, va & PAGE_MASK, __ATOMIC_SEQ_CST);
    tlb_note_fill(h->dtlb, TLB_WRITE, tlb_index(va));
    if (cp && !__atomic_load_n(&cp->writable, __ATOMIC_SEQ_CST)) __atomic_store_n(&e->tag, TLB_INVALID, __ATOMIC_RELAXED);
}

bool mem_store_slow(struct hart *h, uint64_t va, unsigned size, uint64_t val) {
    h->stats.tlb_misses++;
    if (crosses_page(va, size)) {
        /* Both pages are checked before anything is written, so a fault leaves memory unchanged. */
        if (!crossing_pages_ok(h, va, ACCESS_WRITE)) return false;
        for (unsigned b = 0; b < size; b++)
            if (!mem_store8(h, va + b, (uint8_t)(val >> (8 * b)))) return false;
        return true;
    }
    uint64_t gpa;
    int cause = mem_translate(h, va, ACCESS_WRITE, mem_data_priv(h), &gpa);
    if (cause) {
        fail(h, cause, va);
        return false;
    }
    struct phys_page pp = {0};
    if (h->phys->page(h->owner, gpa, true, &pp)) {
        unsigned off = (unsigned)(va & ~PAGE_MASK);
        struct code_page *cp = __atomic_load_n(pp.code, __ATOMIC_ACQUIRE);
        /* The bytes go in before decoded code is invalidated, so that a
         * decoder on another hart sees either the write or the invalidation. */
        memcpy(pp.host + off, &val, size);
        if (!cp || code_page_written(cp, off, size) == 0) map_for_writes(h, va, pp.host, cp);
        return true;
    }
    if (pp.retry) {
        hart_stall(h);
        return false;
    }
    h->stats.mmio++;
    if ((va & (size - 1)) == 0 && h->phys->mmio_write(h->owner, gpa, size, val)) return true;
    hart_raise(h, EXC_STORE_ACCESS, va);
    return false;
}

uint8_t *mem_atomic_ptr(struct hart *h, uint64_t va, unsigned size, bool for_store) {
    if (va & (size - 1)) {
        hart_raise(h, for_store ? EXC_STORE_MISALIGNED : EXC_LOAD_MISALIGNED, va);
        return NULL;
    }
    const struct tlb_entry *e = &h->dtlb->write[tlb_index(va)];
    if (e->tag == (va & PAGE_MASK)) return (uint8_t *)(uintptr_t)(va + e->addend);
    if (!for_store) {
        /* LR only reads. */
        e = &h->dtlb->read[tlb_index(va)];
        if (e->tag == (va & PAGE_MASK)) return (uint8_t *)(uintptr_t)(va + e->addend);
    }
    enum access acc = for_store ? ACCESS_WRITE : ACCESS_READ;
    uint64_t gpa;
    int cause = mem_translate(h, va, acc, mem_data_priv(h), &gpa);
    if (cause) {
        fail(h, cause, va);
        return NULL;
    }
    struct phys_page pp = {0};
    if (!h->phys->page(h->owner, gpa, for_store, &pp)) {
        /* Atomics to devices are not supported, as on most real platforms. */
        fail(h, pp.retry ? MEM_RETRY : access_fault(acc), va);
        return NULL;
    }
    unsigned off = (unsigned)(va & ~PAGE_MASK);
    struct code_page *cp = __atomic_load_n(pp.code, __ATOMIC_ACQUIRE);
    if (for_store && cp) {
        code_page_invalidate(cp, off, size);
        h->amo_code = cp;
        h->amo_off = off;
        h->amo_size = size;
    }
    return pp.host + off;
}

void mem_atomic_written(struct hart *h) {
    code_page_written(h->amo_code, h->amo_off, h->amo_size);
    h->amo_code = NULL;
}

/* The RAM frame code at va is fetched from; false after raising the fault. */
static bool fetch_frame(struct hart *h, uint64_t va, uint64_t *gpa, struct phys_page *pp) {
    int cause = mem_translate(h, va, ACCESS_FETCH, h->priv, gpa);
    if (cause) {
        fail(h, cause, va);
        return false;
    }
    if (!h->phys->page(h->owner, *gpa, false, pp)) {
        fail(h, pp->retry ? MEM_RETRY : EXC_INSN_ACCESS, va);
        return false;
    }
    return true;
}

struct fetch_entry *mem_fetch_fill(struct hart *h, uint64_t va) {
    h->stats.tlb_misses++;
    uint64_t gpa;
    struct phys_page pp = {0};
    uint64_t gen = remap_gen(h);
    if (!fetch_frame(h, va, &gpa, &pp)) return NULL;
    if (pp.zero) {
        /* A never-written frame holds the parcel 0x0000, a defined illegal
         * instruction; raised here, since the frame is never cached. */
        hart_raise(h, EXC_ILLEGAL_INSN, 0);
        return NULL;
    }
    bool created;
    struct code_page *cp = code_page_install(pp.code_map, pp.code, gpa & PAGE_MASK, &created);
    if (!cp) {
        h->env->fatal(h->owner, h, "out of host memory for decoded code");
        return NULL;
    }
    /* From now on stores to this frame must see the code: drop write mappings. */
    if (created) h->phys->code_added(h->owner, gpa & PAGE_MASK);
    struct fetch_entry *e = &h->itlb->fetch[tlb_index(va)];
    /* Jump-cache entries exist only for pages the fetch TLB maps (so that
     * a flush of one page can tell whether it must empty the jump cache):
     * replacing a mapping empties it. */
    if (e->tag != TLB_INVALID) tlb_set_flush_jumps(h->itlb);
    e->addend = (uintptr_t)pp.host - (va & PAGE_MASK);
    e->code = cp;
    tlb_note_fill(h->itlb, TLB_FETCH, tlb_index(va));
    publish_checked(h, &e->tag, va & PAGE_MASK, gen);
    /* The caller decodes from the frame just looked up, even if the entry
     * went again (a move races with this fetch: its bytes are still valid). */
    return e;
}

bool mem_fetch_parcel(struct hart *h, uint64_t va, uint16_t *out) {
    const struct fetch_entry *e = &h->itlb->fetch[tlb_index(va)];
    if (e->tag == (va & PAGE_MASK)) {
        memcpy(out, (const void *)(uintptr_t)(va + e->addend), 2);
        return true;
    }
    uint64_t gpa;
    struct phys_page pp = {0};
    if (!fetch_frame(h, va, &gpa, &pp)) return false;
    memcpy(out, pp.host + (gpa & ~PAGE_MASK), 2);
    return true;
}
