#include "api/protocol.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "vm/engine.h"
#include "vm/platform.h"
#include "vm/size.h"

#define MiB (1024ull * 1024)
#define JSON_DEPTH 16
#define MAX_MEM VM_SPEC_MAX_MEM /* the most guest RAM (or balloon target) a request may give */

struct op_desc {
    const char *name;
    enum api_op op;
    const char *const *fields; /* allowed besides "op" */
};

static const char *const no_fields[] = {NULL};
static const char *const name_field[] = {"name", NULL};
static const char *const create_fields[] = {"name", "kernel", "initrd", "append", "mem",
                                            "cpus", "shares", "cap", "bios", "drives",
                                            "nets", "console", "balloon", "engine", "jit_cache", "share_group",
                                            "mem_shares", "mem_min", NULL};

static const char *const balloon_fields[] = {"name", "target", NULL};
static const char *const snapshot_fields[] = {"name", "file", "stop", "direct", NULL};
static const char *const restore_fields[] = {"name", "file", "paused", NULL};
static const char *const migrate_fields[] = {"name", "uri", "downtime_ms", NULL};

static const struct op_desc ops[] = {
    {"create", API_OP_CREATE, create_fields},   {"start", API_OP_START, name_field},
    {"pause", API_OP_PAUSE, name_field},        {"resume", API_OP_RESUME, name_field},
    {"stop", API_OP_STOP, name_field},          {"destroy", API_OP_DESTROY, name_field},
    {"stats", API_OP_STATS, name_field},        {"console", API_OP_CONSOLE, name_field},
    {"list", API_OP_LIST, no_fields},           {"memory", API_OP_MEMORY, no_fields},
    {"shutdown", API_OP_SHUTDOWN, no_fields},   {"balloon", API_OP_BALLOON, balloon_fields},
    {"snapshot", API_OP_SNAPSHOT, snapshot_fields}, {"restore", API_OP_RESTORE, restore_fields},
    {"migrate", API_OP_MIGRATE, migrate_fields},
};

bool api_valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > VM_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-'))
            return false;
    }
    return true;
}

const char *api_state_name(enum vm_run_state s) {
    switch (s) {
    case VMS_CREATED: return "created";
    case VMS_RUNNING: return "running";
    case VMS_PAUSED: return "paused";
    case VMS_STOPPED: return "stopped";
    }
    return "unknown";
}

const char *api_error_code(int e) {
    switch (e) {
    case MON_ENOENT: return "not_found";
    case MON_EEXIST: return "exists";
    case MON_EINVAL: return "invalid";
    case MON_ENOMEM: return "no_memory";
    case MON_ESTATE: return "bad_state";
    case MON_ELIMIT: return "busy";
    }
    return "error";
}

static char *finish(json_object *obj) {
    const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t n = strlen(s);
    char *out = malloc(n + 2);
    if (out) {
        memcpy(out, s, n);
        out[n] = '\n';
        out[n + 1] = 0;
    }
    json_object_put(obj);
    return out;
}

static char *verror_reply(const char *code, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(msg));
    json_object_object_add(o, "code", json_object_new_string(code));
    return finish(o);
}

char *api_error_reply(const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *r = verror_reply(code, fmt, ap);
    va_end(ap);
    return r;
}

static json_object *balloon_to_json(const struct vm_balloon_info *b) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "target", json_object_new_uint64(b->target));
    json_object_object_add(o, "actual", json_object_new_uint64(b->actual));
    json_object_object_add(o, "size", json_object_new_uint64(b->balloon));
    json_object_object_add(o, "freed", json_object_new_uint64(b->freed));
    json_object_object_add(o, "reported", json_object_new_uint64(b->reported));
    json_object *s = NULL;
    if (b->has_stats) {
        static const struct {
            const char *name;
            uint32_t bit;
            size_t off;
        } fields[] = {
            {"free", VM_STAT_FREE, offsetof(struct vm_guest_mem_stats, free)},
            {"total", VM_STAT_TOTAL, offsetof(struct vm_guest_mem_stats, total)},
            {"available", VM_STAT_AVAILABLE, offsetof(struct vm_guest_mem_stats, available)},
            {"caches", VM_STAT_CACHES, offsetof(struct vm_guest_mem_stats, caches)},
            {"major_faults", VM_STAT_MAJOR_FAULTS, offsetof(struct vm_guest_mem_stats, major_faults)},
            {"minor_faults", VM_STAT_MINOR_FAULTS, offsetof(struct vm_guest_mem_stats, minor_faults)},
            {"swap_in", VM_STAT_SWAP_IN, offsetof(struct vm_guest_mem_stats, swap_in)},
            {"swap_out", VM_STAT_SWAP_OUT, offsetof(struct vm_guest_mem_stats, swap_out)},
        };
        s = json_object_new_object();
        json_object_object_add(s, "age_ms", json_object_new_uint64(b->stats_age_ms));
        for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
            if (!(b->stats.valid & fields[i].bit)) continue;
            uint64_t v;
            memcpy(&v, (const uint8_t *)&b->stats + fields[i].off, sizeof v);
            json_object_object_add(s, fields[i].name, json_object_new_uint64(v));
        }
    }
    json_object_object_add(o, "stats", s);
    return o;
}

void api_info_to_json(const struct vm_info *info, json_object *o) {
    char name[VM_NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", info->name);
    char msg[sizeof info->exit_message];
    snprintf(msg, sizeof msg, "%s", info->exit_message);
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "state", json_object_new_string(api_state_name(info->state)));
    json_object_object_add(o, "cpus", json_object_new_int64(info->cpus));
    json_object_object_add(o, "shares", json_object_new_int64(info->shares));
    json_object_object_add(o, "cap_percent", json_object_new_int64(info->cap_percent));
    json_object_object_add(o, "mem_size", json_object_new_uint64(info->mem_size));
    json_object_object_add(o, "mem_backed", json_object_new_uint64(info->mem_backed));
    json_object_object_add(o, "share_group", info->share_group[0] ? json_object_new_string(info->share_group) : NULL);
    char genid[sizeof info->generation_id];
    snprintf(genid, sizeof genid, "%s", info->generation_id);
    json_object_object_add(o, "generation_id", json_object_new_string(genid));
    json_object *pg = json_object_new_object();
    json_object_object_add(pg, "backed", json_object_new_uint64(info->pages.backed));
    json_object_object_add(pg, "shared", json_object_new_uint64(info->pages.shared));
    json_object_object_add(pg, "zero", json_object_new_uint64(info->pages.zero));
    json_object_object_add(pg, "zero_merged", json_object_new_uint64(info->pages.zero_merged));
    json_object_object_add(pg, "cow_breaks", json_object_new_uint64(info->pages.cow_breaks));
    json_object_object_add(pg, "swapped", json_object_new_uint64(info->pages.swapped));
    json_object_object_add(pg, "swap_outs", json_object_new_uint64(info->pages.swap_outs));
    json_object_object_add(pg, "swap_ins", json_object_new_uint64(info->pages.swap_ins));
    json_object_object_add(pg, "dma_waits", json_object_new_uint64(info->pages.dma_waits));
    json_object_object_add(o, "pages", pg);
    json_object *al = json_object_new_object();
    json_object_object_add(al, "min", json_object_new_uint64(info->alloc.min));
    json_object_object_add(al, "shares", json_object_new_uint64(info->alloc.shares));
    json_object_object_add(al, "active_percent", json_object_new_int64(info->alloc.active_percent));
    json_object_object_add(al, "target", json_object_new_uint64(info->alloc.target));
    json_object_object_add(al, "balloon", json_object_new_uint64(info->alloc.balloon));
    json_object_object_add(o, "alloc", al);
    json_object_object_add(o, "cpu_ns", json_object_new_uint64(info->cpu_ns));
    json_object_object_add(o, "instructions", json_object_new_uint64(info->instructions));
    json_object *c = json_object_new_object();
    json_object_object_add(c, "mem_ops", json_object_new_uint64(info->counts.mem_ops));
    json_object_object_add(c, "tlb_misses", json_object_new_uint64(info->counts.tlb_misses));
    json_object_object_add(c, "sbi_calls", json_object_new_uint64(info->counts.sbi_calls));
    json_object_object_add(c, "mmio", json_object_new_uint64(info->counts.mmio));
    json_object_object_add(c, "wfi", json_object_new_uint64(info->counts.wfi));
    json_object_object_add(c, "exceptions", json_object_new_uint64(info->counts.exceptions));
    json_object_object_add(c, "interrupts", json_object_new_uint64(info->counts.interrupts));
    json_object_object_add(o, "counts", c);
    json_object_object_add(o, "exit_status", json_object_new_int64(info->exit_status));
    json_object_object_add(o, "exit_message", json_object_new_string(msg));
    json_object_object_add(o, "balloon", info->has_balloon ? balloon_to_json(&info->balloon) : NULL);
    json_object_object_add(o, "engine", json_object_new_string(vm_engine_name(info->engine)));
    json_object *j = NULL;
    if (info->engine == VM_ENGINE_JIT) {
        j = json_object_new_object();
        json_object_object_add(j, "translated_blocks", json_object_new_uint64(info->jit.blocks));
        json_object_object_add(j, "translated_instructions", json_object_new_uint64(info->jit.insns));
        json_object_object_add(j, "code_bytes", json_object_new_uint64(info->jit.code_bytes));
        json_object_object_add(j, "flushes", json_object_new_uint64(info->jit.flushes));
        json_object_object_add(j, "translate_ns", json_object_new_uint64(info->jit.translate_ns));
        json_object_object_add(j, "dispatches", json_object_new_uint64(info->jit.dispatches));
        json_object_object_add(j, "fused_pairs", json_object_new_uint64(info->jit.fused));
        json_object_object_add(j, "jumps", json_object_new_uint64(info->jit.jumps));
        json_object_object_add(j, "jump_cache_misses", json_object_new_uint64(info->jit.jump_misses));
    }
    json_object_object_add(o, "jit", j);
}

/* ---- parsing ---- */

static bool fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

/* A string field: absent or null leaves *out NULL (an error if required). */
static bool get_string(json_object *root, const char *key, bool required, const char **out, char *err,
                       size_t errlen) {
    *out = NULL;
    json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || v == NULL) {
        if (required) return fail(err, errlen, "missing field \"%s\"", key);
        return true;
    }
    if (!json_object_is_type(v, json_type_string)) return fail(err, errlen, "field \"%s\" must be a string", key);
    const char *s = json_object_get_string(v);
    if ((size_t)json_object_get_string_len(v) != strlen(s))
        return fail(err, errlen, "field \"%s\" contains a NUL character", key);
    *out = s;
    return true;
}

/* An integer field within [lo, hi]; absent or null leaves *out unchanged. */
static bool get_int(json_object *root, const char *key, int64_t lo, int64_t hi, int64_t *out, char *err,
                    size_t errlen) {
    json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || v == NULL) return true;
    if (!json_object_is_type(v, json_type_int))
        return fail(err, errlen, "field \"%s\" must be an integer", key);
    int64_t n = json_object_get_int64(v);
    if (n < lo || n > hi) {
        return fail(err, errlen, "field \"%s\" must be from %" PRId64 " to %" PRId64 ", not %s", key, lo, hi,
                    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    }
    *out = n;
    return true;
}

/* A size field ("256M" or bytes) within [lo, hi]; absent or null leaves
 * *out unchanged unless required. */
static bool get_size(json_object *root, const char *key, bool required, uint64_t lo, uint64_t hi, uint64_t *out,
                     char *err, size_t errlen) {
    json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || v == NULL) {
        if (required) return fail(err, errlen, "missing field \"%s\"", key);
        return true;
    }
    uint64_t bytes;
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        if (!parse_size(s, &bytes))
            return fail(err, errlen, "field \"%s\": '%.64s' is not a size (examples: 256, 256M, 1G)", key, s);
    } else if (json_object_is_type(v, json_type_int)) {
        if (json_object_get_int64(v) < 0) return fail(err, errlen, "field \"%s\" must not be negative", key);
        bytes = json_object_get_uint64(v);
    } else {
        return fail(err, errlen, "field \"%s\" must be a size string (\"256M\") or a number of bytes", key);
    }
    if (bytes < lo) return fail(err, errlen, "field \"%s\" must be at least %llu MiB", key, (unsigned long long)(lo / MiB));
    if (bytes > hi)
        return fail(err, errlen, "field \"%s\" is too large: at most %llu MiB", key, (unsigned long long)(hi / MiB));
    *out = bytes;
    return true;
}

static bool get_mem(json_object *root, uint64_t *out, char *err, size_t errlen) {
    uint64_t bytes = *out;
    if (!get_size(root, "mem", false, MiB, MAX_MEM, &bytes, err, errlen)) return false;
    *out = (bytes + 4095) & ~4095ull;
    return true;
}

/* An array of at most max non-empty strings; absent or null leaves *n 0. */
static bool get_strings(json_object *root, const char *key, const char **out, unsigned max, unsigned *n, char *err,
                        size_t errlen) {
    *n = 0;
    json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || v == NULL) return true;
    if (!json_object_is_type(v, json_type_array)) return fail(err, errlen, "field \"%s\" must be an array of strings", key);
    size_t len = json_object_array_length(v);
    if (len > max) return fail(err, errlen, "field \"%s\" has %zu entries; at most %u", key, len, max);
    for (size_t i = 0; i < len; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        if (!json_object_is_type(e, json_type_string)) return fail(err, errlen, "field \"%s\" must be an array of strings", key);
        const char *str = json_object_get_string(e);
        if ((size_t)json_object_get_string_len(e) != strlen(str) || !*str)
            return fail(err, errlen, "field \"%s\": entry %zu is empty or contains a NUL character", key, i);
        out[(*n)++] = str;
    }
    return true;
}

static bool parse_create(json_object *root, struct api_request *req, char *err, size_t errlen) {
    struct vm_spec *s = &req->spec;
    s->mem_size = 256 * MiB;
    s->cpus = 1;
    s->shares = 1000;
    s->cap_percent = 0;
    if (!get_string(root, "kernel", false, &s->kernel, err, errlen)) return false;
    if (!get_string(root, "initrd", false, &s->initrd, err, errlen)) return false;
    if (!get_string(root, "append", false, &s->append, err, errlen)) return false;
    if (!get_string(root, "bios", false, &s->bios, err, errlen)) return false;
    if (!get_mem(root, &s->mem_size, err, errlen)) return false;
    int64_t cpus = 1, shares = 1000, cap = 0;
    if (!get_int(root, "cpus", 1, VM_MAX_HARTS, &cpus, err, errlen)) return false;
    if (!get_int(root, "shares", 1, 100000, &shares, err, errlen)) return false;
    if (!get_int(root, "cap", 0, 100, &cap, err, errlen)) return false;
    s->cpus = (unsigned)cpus;
    s->shares = (unsigned)shares;
    s->cap_percent = (unsigned)cap;
    if (!get_strings(root, "drives", s->drives, VM_MAX_DRIVES, &s->ndrives, err, errlen)) return false;
    if (!get_strings(root, "nets", s->nets, VM_MAX_NETS, &s->nnets, err, errlen)) return false;
    const char *console;
    if (!get_string(root, "console", false, &console, err, errlen)) return false;
    if (console && strcmp(console, "uart") && strcmp(console, "virtio"))
        return fail(err, errlen, "field \"console\" must be \"uart\" or \"virtio\"");
    s->virtio_console = console && !strcmp(console, "virtio");
    const char *engine;
    if (!get_string(root, "engine", false, &engine, err, errlen)) return false;
    if (engine && !vm_engine_parse(engine, &s->engine))
        return fail(err, errlen, "field \"engine\" must be \"jit\" or \"interp\", not \"%.64s\"", engine);
    if (!get_size(root, "jit_cache", false, VM_JIT_CACHE_MIN, VM_JIT_CACHE_MAX, &s->jit_cache, err, errlen))
        return false;
    int64_t mem_shares = 0;
    if (!get_int(root, "mem_shares", 1, 1000000000, &mem_shares, err, errlen)) return false;
    s->mem_shares = (unsigned)mem_shares;
    if (!get_size(root, "mem_min", false, 0, s->mem_size, &s->mem_min, err, errlen)) return false;
    const char *group;
    if (!get_string(root, "share_group", false, &group, err, errlen)) return false;
    if (group) {
        if (strlen(group) >= sizeof s->share_group)
            return fail(err, errlen, "field \"share_group\" is longer than %d characters", VM_NAME_MAX);
        memcpy(s->share_group, group, strlen(group) + 1);
    }
    json_object *b;
    if (json_object_object_get_ex(root, "balloon", &b) && b) {
        if (!json_object_is_type(b, json_type_boolean)) return fail(err, errlen, "field \"balloon\" must be true or false");
        s->no_balloon = !json_object_get_boolean(b);
    }
    if (!s->append) s->append = s->virtio_console ? "console=hvc0" : "console=ttyS0";
    if (!s->kernel && !s->bios) return fail(err, errlen, "nothing to run: give \"kernel\" (or \"bios\")");
    if (s->initrd && !s->kernel) return fail(err, errlen, "\"initrd\" needs \"kernel\"");
    if (s->kernel && !*s->kernel) return fail(err, errlen, "field \"kernel\" is empty");
    if (s->initrd && !*s->initrd) return fail(err, errlen, "field \"initrd\" is empty");
    if (s->bios && !*s->bios) return fail(err, errlen, "field \"bios\" is empty");
    memcpy(s->name, req->name, sizeof s->name);
    return true;
}

static bool get_flag(json_object *root, const char *name, bool *out, char *err, size_t errlen) {
    json_object *b;
    if (!json_object_object_get_ex(root, name, &b) || !b) return true;
    if (!json_object_is_type(b, json_type_boolean)) return fail(err, errlen, "field \"%s\" must be true or false", name);
    *out = json_object_get_boolean(b);
    return true;
}

/* snapshot and restore: an absolute file path and flags. */
static bool parse_snapshot(json_object *root, struct api_request *req, char *err, size_t errlen) {
    if (!get_string(root, "file", true, &req->file, err, errlen)) return false;
    if (req->file[0] != '/') return fail(err, errlen, "field \"file\" must be an absolute path");
    if (strlen(req->file) >= 4096) return fail(err, errlen, "field \"file\" is too long");
    if (req->op == API_OP_RESTORE) return get_flag(root, "paused", &req->paused, err, errlen);
    return get_flag(root, "stop", &req->stop, err, errlen) && get_flag(root, "direct", &req->direct, err, errlen);
}

bool api_parse_request(const char *line, size_t len, struct api_request *req, char *err, size_t errlen) {
    memset(req, 0, sizeof *req);
    if (len > API_MAX_REQUEST) return fail(err, errlen, "request is larger than %d bytes", API_MAX_REQUEST);
    json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
    if (!tok) return fail(err, errlen, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8);
    json_object *root = json_tokener_parse_ex(tok, line, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        /* The line is all there is: a NUL ends a bare number, and shows
         * anything else unfinished for what it is. */
        root = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
        if (jerr != json_tokener_success) jerr = json_tokener_continue;
    }
    json_tokener_free(tok);
    if (jerr == json_tokener_continue) {
        json_object_put(root);
        return fail(err, errlen, "malformed JSON: the request ends in the middle of a value");
    }
    if (jerr != json_tokener_success) {
        json_object_put(root);
        return fail(err, errlen, "malformed JSON at byte %zu: %s", end, json_tokener_error_desc(jerr));
    }
    for (size_t i = end; i < len; i++) {
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
            json_object_put(root);
            return fail(err, errlen, "malformed JSON: unexpected data after the object at byte %zu", i);
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return fail(err, errlen, "a request must be a JSON object");
    }
    req->root = root;

    const char *opname;
    if (!get_string(root, "op", true, &opname, err, errlen)) goto bad;
    const struct op_desc *d = NULL;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(ops[i].name, opname) == 0) d = &ops[i];
    if (!d) {
        fail(err, errlen, "unknown op \"%.64s\" (create, start, pause, resume, stop, destroy, stats, console, "
                          "balloon, snapshot, restore, migrate, list, memory, shutdown)", opname);
        goto bad;
    }
    req->op = d->op;
    json_object_object_foreach(root, key, val) {
        (void)val;
        bool known = strcmp(key, "op") == 0;
        for (const char *const *f = d->fields; *f && !known; f++) known = strcmp(*f, key) == 0;
        if (!known) {
            fail(err, errlen, "unknown field \"%.64s\" for op \"%s\"", key, d->name);
            goto bad;
        }
    }
    if (d->fields[0] && strcmp(d->fields[0], "name") == 0) {
        const char *name;
        if (!get_string(root, "name", true, &name, err, errlen)) goto bad;
        if (!api_valid_name(name)) {
            fail(err, errlen, "bad VM name \"%.80s\": use 1 to %d characters of A-Z a-z 0-9 _ . -", name,
                 VM_NAME_MAX);
            goto bad;
        }
        snprintf(req->name, sizeof req->name, "%s", name);
    }
    if (req->op == API_OP_CREATE && !parse_create(root, req, err, errlen)) goto bad;
    if (req->op == API_OP_BALLOON && !get_size(root, "target", true, MiB, MAX_MEM, &req->balloon_target, err, errlen))
        goto bad;
    if ((req->op == API_OP_SNAPSHOT || req->op == API_OP_RESTORE) && !parse_snapshot(root, req, err, errlen)) goto bad;
    if (req->op == API_OP_MIGRATE) {
        int64_t ms = 0;
        if (!get_string(root, "uri", true, &req->uri, err, errlen) || !get_int(root, "downtime_ms", 1, 60000, &ms, err, errlen))
            goto bad;
        req->downtime_ms = (unsigned)ms;
    }
    return true;
bad:
    api_request_free(req);
    return false;
}

void api_request_free(struct api_request *req) {
    if (req->root) json_object_put(req->root);
    req->root = NULL;
}

/* ---- execution ---- */

/* A reply object with "ok": true as its first field. */
static json_object *ok_object(void) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    return o;
}

static char *ok_reply(json_object *o) { return finish(o); }

/* The reply to an operation on one VM: its state afterwards. */
static char *vm_reply(struct monitor *m, const char *name) {
    json_object *o = ok_object();
    struct vm_info info;
    memset(&info, 0, sizeof info);
    if (monitor_vm_info(m, name, &info) == 0) {
        api_info_to_json(&info, o);
    } else {
        json_object_object_add(o, "name", json_object_new_string(name)); /* destroyed meanwhile */
    }
    return ok_reply(o);
}

/* A VM's info with its guest's memory statistics under a second old, if
 * its balloon driver answers within a quarter of a second (monitor_vm_info
 * asks the guest for fresh figures when it finds old ones). */
static int info_with_fresh_stats(struct monitor *m, const char *name, struct vm_info *info) {
    int rc = monitor_vm_info(m, name, info);
    for (int i = 0; rc == 0 && i < 25 && info->state == VMS_RUNNING && info->has_balloon &&
                    info->balloon.has_stats && info->balloon.stats_age_ms >= 1000;
         i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        rc = monitor_vm_info(m, name, info);
    }
    return rc;
}

static char *monitor_error_reply(int rc, const char *err) {
    int e = rc < 0 ? -rc : rc;
    return api_error_reply(api_error_code(e), "%s", err[0] ? err : monitor_strerror(e));
}

static char *list_reply(struct monitor *m) {
    size_t cap = 64, n;
    struct vm_info *v = NULL;
    for (;;) {
        struct vm_info *nv = realloc(v, cap * sizeof *v);
        if (!nv) {
            free(v);
            return api_error_reply("error", "out of memory");
        }
        v = nv;
        memset(v, 0, cap * sizeof *v);
        n = monitor_vm_list(m, v, cap);
        if (n <= cap) break;
        cap = n + 16;
    }
    /* Sorted by name, so that listings are stable. */
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strncmp(v[j - 1].name, v[j].name, sizeof v->name) > 0; j--) {
            struct vm_info t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    }
    json_object *o = ok_object();
    json_object *arr = json_object_new_array_ext((int)n);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_new_object();
        api_info_to_json(&v[i], e);
        json_object_array_add(arr, e);
    }
    free(v);
    json_object_object_add(o, "vms", arr);
    return ok_reply(o);
}

/* snapshot and restore: the VM afterwards, with what was done. */
static char *snapshot_reply(struct monitor *m, const struct api_request *req) {
    char err[512] = "";
    struct monitor_snapshot_result res;
    unsigned flags = (req->stop ? MONITOR_SNAPSHOT_STOP : 0) | (req->direct ? MONITOR_SNAPSHOT_DIRECT : 0);
    int rc = req->op == API_OP_SNAPSHOT ? monitor_vm_snapshot(m, req->name, req->file, flags, &res, err, sizeof err)
                                        : monitor_vm_restore(m, req->file, req->name, req->paused, &res, err, sizeof err);
    if (rc) return monitor_error_reply(rc, err);
    json_object *o = ok_object();
    struct vm_info info;
    memset(&info, 0, sizeof info);
    if (monitor_vm_info(m, req->name, &info) == 0) api_info_to_json(&info, o);
    json_object *so = json_object_new_object();
    json_object_object_add(so, "file", json_object_new_string(req->file));
    json_object_object_add(so, "bytes", json_object_new_uint64(res.bytes));
    if (req->op == API_OP_SNAPSHOT) {
        json_object_object_add(so, "frames", json_object_new_uint64(res.frames));
        json_object_object_add(so, "aliased", json_object_new_uint64(res.aliased));
        json_object_object_add(so, "pause_ns", json_object_new_uint64(res.pause_ns));
        json_object_object_add(so, "direct", json_object_new_boolean(res.direct));
    }
    json_object_object_add(so, "total_ns", json_object_new_uint64(res.total_ns));
    json_object_object_add(o, "snapshot", so);
    return ok_reply(o);
}

/* migrate: what it took; the VM now lives on the target. */
static char *migrate_reply(struct monitor *m, const struct api_request *req) {
    char err[512] = "";
    struct monitor_migrate_result res;
    int rc = monitor_vm_migrate(m, req->name, req->uri, req->downtime_ms, &res, err, sizeof err);
    if (rc) return monitor_error_reply(rc, err);
    json_object *o = ok_object();
    json_object_object_add(o, "name", json_object_new_string(req->name));
    json_object *mo = json_object_new_object();
    json_object_object_add(mo, "uri", json_object_new_string(req->uri));
    json_object_object_add(mo, "total_ns", json_object_new_uint64(res.total_ns));
    json_object_object_add(mo, "downtime_ns", json_object_new_uint64(res.downtime_ns));
    json_object_object_add(mo, "bytes", json_object_new_uint64(res.bytes));
    json_object_object_add(mo, "frames", json_object_new_uint64(res.frames));
    json_object_object_add(mo, "rounds", json_object_new_uint64(res.rounds));
    json_object_object_add(mo, "throttled", json_object_new_boolean(res.throttled));
    json_object_object_add(o, "migration", mo);
    return ok_reply(o);
}

static char *execute(struct monitor *m, const struct api_request *req, enum api_after *after) {
    char err[512] = "";
    int rc = 0;
    switch (req->op) {
    case API_OP_CREATE: rc = monitor_vm_create(m, &req->spec, err, sizeof err); break;
    case API_OP_START: rc = monitor_vm_start(m, req->name, err, sizeof err); break;
    case API_OP_PAUSE: rc = monitor_vm_pause(m, req->name, err, sizeof err); break;
    case API_OP_RESUME: rc = monitor_vm_resume(m, req->name, err, sizeof err); break;
    case API_OP_STOP: rc = monitor_vm_stop(m, req->name, err, sizeof err); break;
    case API_OP_BALLOON: rc = monitor_vm_balloon(m, req->name, req->balloon_target, err, sizeof err); break;
    case API_OP_SNAPSHOT:
    case API_OP_RESTORE: return snapshot_reply(m, req);
    case API_OP_MIGRATE: return migrate_reply(m, req);
    case API_OP_DESTROY: {
        rc = monitor_vm_destroy(m, req->name, err, sizeof err);
        if (rc) return monitor_error_reply(rc, err);
        json_object *o = ok_object();
        json_object_object_add(o, "name", json_object_new_string(req->name));
        return ok_reply(o);
    }
    case API_OP_STATS:
    case API_OP_CONSOLE: {
        struct vm_info info;
        memset(&info, 0, sizeof info);
        int found = req->op == API_OP_STATS ? info_with_fresh_stats(m, req->name, &info)
                                            : monitor_vm_info(m, req->name, &info);
        if (found != 0) return api_error_reply("not_found", "no VM named \"%s\"", req->name);
        json_object *o = ok_object();
        if (req->op == API_OP_STATS) {
            api_info_to_json(&info, o);
        } else {
            json_object_object_add(o, "name", json_object_new_string(req->name));
            *after = API_AFTER_CONSOLE;
        }
        return ok_reply(o);
    }
    case API_OP_LIST: return list_reply(m);
    case API_OP_MEMORY: {
        uint64_t total = 0, free_bytes = 0;
        monitor_memory(m, &total, &free_bytes);
        json_object *o = ok_object();
        json_object_object_add(o, "total", json_object_new_uint64(total));
        json_object_object_add(o, "free", json_object_new_uint64(free_bytes));
        json_object_object_add(o, "used", json_object_new_uint64(total - free_bytes));
        struct monitor_sharing sh;
        monitor_sharing(m, &sh);
        json_object *so = json_object_new_object();
        json_object_object_add(so, "enabled", json_object_new_boolean(sh.enabled));
        json_object_object_add(so, "rate", json_object_new_uint64(sh.rate));
        json_object_object_add(so, "scanned", json_object_new_uint64(sh.scanned));
        json_object_object_add(so, "merged", json_object_new_uint64(sh.merged));
        json_object_object_add(so, "zero_merged", json_object_new_uint64(sh.zero_merged));
        json_object_object_add(so, "cancelled", json_object_new_uint64(sh.cancelled));
        json_object_object_add(so, "different", json_object_new_uint64(sh.different));
        json_object_object_add(so, "shared_frames", json_object_new_uint64(sh.shared_frames));
        json_object_object_add(so, "sharing_pages", json_object_new_uint64(sh.sharing_pages));
        json_object_object_add(so, "saved_bytes",
                               json_object_new_uint64(sh.sharing_pages > sh.shared_frames
                                                          ? (sh.sharing_pages - sh.shared_frames) << 12 : 0));
        json_object_object_add(so, "cow_breaks", json_object_new_uint64(sh.cow_breaks));
        json_object_object_add(so, "scan_cpu_ns", json_object_new_uint64(sh.scan_cpu_ns));
        json_object_object_add(o, "sharing", so);
        struct monitor_swap sw;
        monitor_swap(m, &sw);
        json_object *wo = json_object_new_object();
        json_object_object_add(wo, "enabled", json_object_new_boolean(sw.enabled));
        json_object_object_add(wo, "state", json_object_new_string(sw.state ? sw.state : "high"));
        json_object_object_add(wo, "swapped", json_object_new_uint64(sw.swapped));
        json_object_object_add(wo, "swap_outs", json_object_new_uint64(sw.swap_outs));
        json_object_object_add(wo, "swap_ins", json_object_new_uint64(sw.swap_ins));
        json_object_object_add(wo, "cancelled", json_object_new_uint64(sw.cancelled));
        json_object_object_add(wo, "errors", json_object_new_uint64(sw.errors));
        json_object_object_add(wo, "waiting", json_object_new_uint64(sw.waiting));
        json_object_object_add(wo, "cpu_ns", json_object_new_uint64(sw.cpu_ns));
        json_object_object_add(wo, "low_holds", json_object_new_uint64(sw.low_holds));
        json_object_object_add(wo, "holding", json_object_new_boolean(sw.holding));
        json_object_object_add(o, "swap", wo);
        return ok_reply(o);
    }
    case API_OP_SHUTDOWN:
        *after = API_AFTER_SHUTDOWN;
        return ok_reply(ok_object());
    }
    if (rc) return monitor_error_reply(rc, err);
    return vm_reply(m, req->name);
}

char *api_handle_line(struct monitor *m, const char *line, size_t len, enum api_after *after,
                      char name[VM_NAME_MAX + 1]) {
    *after = API_AFTER_NONE;
    struct api_request req;
    char err[512];
    if (!api_parse_request(line, len, &req, err, sizeof err)) return api_error_reply("bad_request", "%s", err);
    char *reply = execute(m, &req, after);
    if (*after == API_AFTER_CONSOLE) memcpy(name, req.name, VM_NAME_MAX + 1);
    api_request_free(&req);
    return reply;
}
