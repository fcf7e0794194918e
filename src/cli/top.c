/* `rvisor top`: a live view of every VM in a running monitor, in the manner
 * of esxtop and virt-top: host CPU used, guest instructions per second,
 * exits per second by reason, software-TLB hit rate, memory (with what
 * ESX's memory manager did to it), and the engine with the translator's
 * figures; above them, the monitor's machine memory, page sharing and swap. */
#include "cli/top.h"

#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/options.h"
#include "cli/reply_fields.h"

#define MAX_VMS 256

struct sample {
    char name[64];
    char state[16];
    char engine[16];
    bool jit;  /* the translator's counters below are there */
    uint64_t cpu_ns, insns, mem_size, backed;
    uint64_t mem_ops, tlb_misses, sbi, mmio, wfi, exc, irq;
    uint64_t blocks, code_bytes, flushes, translate_ns, dispatches;
    uint64_t shared_pages, swapped_pages, balloon_bytes;
    int64_t active_percent; /* -1: not estimated yet */
};

/* The monitor's memory figures (the `memory` request). */
struct machine_sample {
    bool ok;
    char state[16];
    uint64_t total, used, shared_frames, sharing_pages, cow_breaks, scanned, swapped, swap_outs, swap_ins;
};

static void copy_str(char *dst, size_t len, json_object *o, const char *key) {
    snprintf(dst, len, "%s", field_str(o, key));
}

static void take_machine_sample(const char *socket_path, struct machine_sample *m) {
    memset(m, 0, sizeof *m);
    json_object *reply = client_request(socket_path, "memory", NULL);
    if (!reply) return;
    json_object *sh = field_object(reply, "sharing"), *sw = field_object(reply, "swap");
    m->ok = true;
    m->total = field_u64(reply, "total");
    m->used = field_u64(reply, "used");
    if (sh) {
        m->shared_frames = field_u64(sh, "shared_frames");
        m->sharing_pages = field_u64(sh, "sharing_pages");
        m->cow_breaks = field_u64(sh, "cow_breaks");
        m->scanned = field_u64(sh, "scanned");
    }
    if (sw) {
        copy_str(m->state, sizeof m->state, sw, "state");
        m->swapped = field_u64(sw, "swapped");
        m->swap_outs = field_u64(sw, "swap_outs");
        m->swap_ins = field_u64(sw, "swap_ins");
    }
    json_object_put(reply);
}

/* Reads every VM's counters; returns how many, or -1 if the monitor is unreachable. */
static int take_sample(const char *socket_path, struct sample *out) {
    json_object *reply = client_request(socket_path, "list", NULL);
    if (!reply) return -1;
    json_object *vms;
    int n = 0;
    if (json_object_object_get_ex(reply, "vms", &vms))
        for (size_t i = 0; i < json_object_array_length(vms) && n < MAX_VMS; i++) {
            json_object *v = json_object_array_get_idx(vms, i), *c = NULL, *j = NULL;
            struct sample *s = &out[n++];
            memset(s, 0, sizeof *s);
            copy_str(s->name, sizeof s->name, v, "name");
            copy_str(s->state, sizeof s->state, v, "state");
            copy_str(s->engine, sizeof s->engine, v, "engine");
            s->cpu_ns = field_u64(v, "cpu_ns");
            s->insns = field_u64(v, "instructions");
            s->mem_size = field_u64(v, "mem_size");
            s->backed = field_u64(v, "mem_backed");
            if ((c = field_object(v, "counts"))) {
                s->mem_ops = field_u64(c, "mem_ops");
                s->tlb_misses = field_u64(c, "tlb_misses");
                s->sbi = field_u64(c, "sbi_calls");
                s->mmio = field_u64(c, "mmio");
                s->wfi = field_u64(c, "wfi");
                s->exc = field_u64(c, "exceptions");
                s->irq = field_u64(c, "interrupts");
            }
            json_object *pg = field_object(v, "pages"), *al = field_object(v, "alloc");
            s->active_percent = -1;
            if (pg) {
                s->shared_pages = field_u64(pg, "shared");
                s->swapped_pages = field_u64(pg, "swapped");
            }
            if (al) {
                s->balloon_bytes = field_u64(al, "balloon");
                if (field_has(al, "active_percent")) s->active_percent = field_i64(al, "active_percent");
            }
            if ((j = field_object(v, "jit"))) {
                s->jit = true;
                s->blocks = field_u64(j, "translated_blocks");
                s->code_bytes = field_u64(j, "code_bytes");
                s->flushes = field_u64(j, "flushes");
                s->translate_ns = field_u64(j, "translate_ns");
                s->dispatches = field_u64(j, "dispatches");
            }
        }
    json_object_put(reply);
    return n;
}

static const struct sample *find(const struct sample *s, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0) return &s[i];
    return NULL;
}

static double rate(uint64_t now, uint64_t then, double secs) { return now >= then ? (double)(now - then) / secs : 0; }

/* One line of the monitor's memory: what is in use, the reclamation
 * state, page sharing and swap, with rates over the interval. */
static void draw_machine(const struct machine_sample *m, const struct machine_sample *pm, double secs) {
    if (!m->ok) return;
    const struct machine_sample zero = {0};
    if (!pm->ok) pm = &zero;
    printf("machine memory %llu/%llu MiB, reclamation %s | sharing: %llu frames for %llu pages (%llu MiB saved), "
           "%.0f CoW breaks/s, %.0f frames scanned/s | swap: %llu MiB, %.0f out/s, %.0f in/s\n",
           (unsigned long long)(m->used >> 20), (unsigned long long)(m->total >> 20), *m->state ? m->state : "-",
           (unsigned long long)m->shared_frames, (unsigned long long)m->sharing_pages,
           (unsigned long long)((m->sharing_pages > m->shared_frames ? m->sharing_pages - m->shared_frames : 0) >> 8),
           rate(m->cow_breaks, pm->cow_breaks, secs), rate(m->scanned, pm->scanned, secs),
           (unsigned long long)(m->swapped >> 8), rate(m->swap_outs, pm->swap_outs, secs),
           rate(m->swap_ins, pm->swap_ins, secs));
}

static void draw(const struct sample *cur, int n, const struct sample *prev, int np, const struct machine_sample *m,
                 const struct machine_sample *pm, double secs, bool clear) {
    if (clear) printf("\033[H\033[2J");
    printf("rvisor top - %d VMs, every %.1f s (q quits)\n", n, secs);
    draw_machine(m, pm, secs);
    printf("\n%-16s %-8s %6s %8s %8s %8s %8s %8s %8s %7s %11s %5s %5s %5s %4s %-6s %8s %7s %5s %8s %10s\n", "NAME",
           "STATE", "CPU%", "MIPS", "SBI/s", "MMIO/s", "WFI/s", "TRAP/s", "IRQ/s", "TLBHIT%", "MEM MiB", "SHR", "SWP",
           "BAL", "ACT%", "ENGINE", "BLOCKS", "CODEKiB", "FLUSH", "XLATEms", "DISP/Minsn");
    for (int i = 0; i < n; i++) {
        const struct sample *c = &cur[i], *p = find(prev, np, c->name);
        struct sample zero = {0};
        if (!p) p = &zero;
        uint64_t ops = c->mem_ops - (p->mem_ops <= c->mem_ops ? p->mem_ops : 0);
        uint64_t misses = c->tlb_misses - (p->tlb_misses <= c->tlb_misses ? p->tlb_misses : 0);
        double hit = ops ? 100.0 * (double)(ops > misses ? ops - misses : 0) / (double)ops : 100.0;
        char active[24] = "-";
        if (c->active_percent >= 0) snprintf(active, sizeof active, "%lld", (long long)c->active_percent);
        printf("%-16.16s %-8s %6.1f %8.1f %8.0f %8.0f %8.0f %8.0f %8.0f %7.2f %5llu/%-5llu %5llu %5llu %5llu %4s %-6.6s",
               c->name, c->state, rate(c->cpu_ns, p->cpu_ns, secs) / 1e7, rate(c->insns, p->insns, secs) / 1e6,
               rate(c->sbi, p->sbi, secs), rate(c->mmio, p->mmio, secs), rate(c->wfi, p->wfi, secs),
               rate(c->exc, p->exc, secs), rate(c->irq, p->irq, secs), hit,
               (unsigned long long)(c->backed >> 20), (unsigned long long)(c->mem_size >> 20),
               (unsigned long long)(c->shared_pages >> 8), (unsigned long long)(c->swapped_pages >> 8),
               (unsigned long long)(c->balloon_bytes >> 20), active, *c->engine ? c->engine : "-");
        if (c->jit) {
            /* Totals, but the dispatch rate: per million guest instructions over this interval. */
            uint64_t insns = c->insns - (p->insns <= c->insns ? p->insns : 0);
            uint64_t disp = c->dispatches - (p->jit && p->dispatches <= c->dispatches ? p->dispatches : 0);
            char per[32] = "-";
            if (insns) snprintf(per, sizeof per, "%.0f", (double)disp * 1e6 / (double)insns);
            printf(" %8llu %7llu %5llu %8.0f %10s\n", (unsigned long long)c->blocks,
                   (unsigned long long)(c->code_bytes >> 10), (unsigned long long)c->flushes,
                   (double)c->translate_ns / 1e6, per);
        } else {
            printf(" %8s %7s %5s %8s %10s\n", "-", "-", "-", "-", "-");
        }
    }
    fflush(stdout);
}

static void usage(FILE *f) {
    fprintf(f, "Usage: rvisor top [--socket PATH] [--interval SECONDS] [--iterations N]\n"
               "A live view of every VM in the running monitor: host CPU%% used, guest MIPS,\n"
               "exits per second (SBI calls, MMIO, wfi, traps, interrupts), software-TLB hit\n"
               "rate, memory backed / configured, and of it in MiB: shared (SHR), swapped\n"
               "(SWP), taken by the balloon (BAL), and the active estimate (ACT%%); the engine\n"
               "(jit or interp). Above them the monitor's machine memory, its reclamation\n"
               "state, page sharing (copy-on-write breaks and frames scanned per second) and\n"
               "swap (frames out and in per second). For the\n"
               "translator, totals since creation: blocks translated, code-cache KiB in use,\n"
               "flushes of a full code cache, ms spent translating; and dispatches (returns to\n"
               "the translator's dispatcher) per million guest instructions over the interval.\n"
               "- where a figure does not apply. q or Ctrl-C quits.\n");
}

int top_command(int argc, char **argv) {
    static const struct option longopts[] = {{"socket", required_argument, 0, 's'},
                                             {"interval", required_argument, 0, 'i'},
                                             {"iterations", required_argument, 0, 'n'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *socket_path = NULL;
    double interval = 1.0;
    long iterations = 0;
    getopt_restart();
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        char *end;
        switch (ch) {
        case 's': socket_path = optarg; break;
        case 'i':
            interval = strtod(optarg, &end);
            if (*end || interval < 0.1 || interval > 3600) {
                fprintf(stderr, "rvisor: --interval must be between 0.1 and 3600 seconds\n");
                return 1;
            }
            break;
        case 'n':
            iterations = strtol(optarg, &end, 10);
            if (*end || iterations < 1) {
                fprintf(stderr, "rvisor: --iterations must be a positive number\n");
                return 1;
            }
            break;
        case 'h': usage(stdout); return 0;
        case ':': fprintf(stderr, "rvisor: option '%s' needs a value\n", argv[optind - 1]); return 1;
        default: fprintf(stderr, "rvisor: unknown option '%s'\n", argv[optind - 1]); usage(stderr); return 1;
        }
    }
    char default_path[PATH_MAX];
    if (!socket_path) {
        client_default_socket(default_path, sizeof default_path);
        socket_path = default_path;
    }
    struct sample *prev = calloc(MAX_VMS, sizeof *prev), *cur = calloc(MAX_VMS, sizeof *cur);
    int np = prev && cur ? take_sample(socket_path, prev) : -1;
    struct machine_sample mprev, mcur;
    take_machine_sample(socket_path, &mprev);
    int status = np < 0;
    bool tty = isatty(STDOUT_FILENO);
    for (long k = 0; !status && (iterations == 0 || k < iterations); k++) {
        struct pollfd in = {.fd = STDIN_FILENO, .events = POLLIN};
        if (poll(&in, isatty(STDIN_FILENO) ? 1 : 0, (int)(interval * 1000)) > 0) {
            char c;
            if (read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q')) break;
        }
        int n = take_sample(socket_path, cur);
        if (n < 0) {
            status = 1;
            break;
        }
        take_machine_sample(socket_path, &mcur);
        draw(cur, n, prev, np, &mcur, &mprev, interval, tty);
        mprev = mcur;
        struct sample *t = prev;
        prev = cur;
        cur = t;
        np = n;
    }
    free(prev);
    free(cur);
    return status;
}
