/* A VM's creation spec, owned and saved: see vm_spec_store.h. */
#include "monitor/vm_spec_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/vmstate.h"

#define SPEC_STRING_MAX 4096 /* an option string longer than this is refused on load */

/* The numbers; strings follow them in the section. */
struct spec_numbers {
    uint64_t mem_size, jit_cache, mem_min;
    uint32_t cpus, shares, cap_percent, engine, mem_shares, ndrives, nnets;
    bool virtio_console, no_balloon;
};

static const struct vmstate_field spec_fields[] = {
    VMSTATE_U(struct spec_numbers, mem_size),
    VMSTATE_U(struct spec_numbers, jit_cache),
    VMSTATE_U(struct spec_numbers, mem_min),
    VMSTATE_U_MAX(struct spec_numbers, cpus, VM_MAX_HARTS),
    VMSTATE_U(struct spec_numbers, shares),
    VMSTATE_U_MAX(struct spec_numbers, cap_percent, 100),
    VMSTATE_U_MAX(struct spec_numbers, engine, VM_ENGINE_INTERP),
    VMSTATE_U(struct spec_numbers, mem_shares),
    VMSTATE_U_MAX(struct spec_numbers, ndrives, VM_MAX_DRIVES),
    VMSTATE_U_MAX(struct spec_numbers, nnets, VM_MAX_NETS),
    VMSTATE_BOOL(struct spec_numbers, virtio_console),
    VMSTATE_BOOL(struct spec_numbers, no_balloon),
};
static const struct vmstate spec_vmstate = VMSTATE_TABLE("spec", 1, spec_fields);

static bool own(struct vm_spec_store *dst, unsigned slot, const char *s, const char **out) {
    dst->strings[slot] = strdup(s ? s : "");
    *out = dst->strings[slot];
    return dst->strings[slot] != NULL;
}

bool vm_spec_store_copy(struct vm_spec_store *dst, const struct vm_spec *src) {
    memset(dst, 0, sizeof *dst);
    dst->spec = *src;
    dst->spec.kernel = dst->spec.initrd = dst->spec.append = dst->spec.bios = NULL;
    for (unsigned i = 0; i < src->ndrives && i < VM_MAX_DRIVES; i++)
        if (!own(dst, i, src->drives[i], &dst->spec.drives[i])) return false;
    for (unsigned i = 0; i < src->nnets && i < VM_MAX_NETS; i++)
        if (!own(dst, VM_MAX_DRIVES + i, src->nets[i], &dst->spec.nets[i])) return false;
    return true;
}

void vm_spec_store_free(struct vm_spec_store *s) {
    for (unsigned i = 0; i < VM_MAX_DRIVES + VM_MAX_NETS; i++) free(s->strings[i]);
    memset(s, 0, sizeof *s);
}

static bool put_string(struct snap_writer *w, const char *s) {
    size_t n = strlen(s);
    return snap_write_u32(w, (uint32_t)n) && snap_write(w, s, n);
}

bool vm_spec_store_save(const struct vm_spec_store *s, struct snap_writer *w) {
    const struct vm_spec *v = &s->spec;
    struct spec_numbers n = {
        .mem_size = v->mem_size, .jit_cache = v->jit_cache, .mem_min = v->mem_min, .cpus = v->cpus,
        .shares = v->shares, .cap_percent = v->cap_percent, .engine = v->engine, .mem_shares = v->mem_shares,
        .ndrives = v->ndrives, .nnets = v->nnets, .virtio_console = v->virtio_console, .no_balloon = v->no_balloon,
    };
    bool ok = snap_section_begin(w, spec_vmstate.tag, spec_vmstate.version) && vmstate_put(w, &spec_vmstate, &n) &&
              put_string(w, v->share_group);
    for (unsigned i = 0; ok && i < v->ndrives; i++) ok = put_string(w, v->drives[i]);
    for (unsigned i = 0; ok && i < v->nnets; i++) ok = put_string(w, v->nets[i]);
    return ok && snap_section_end(w);
}

/* A string of printable characters, at most max bytes, into a new allocation. */
static char *get_string(struct snap_cursor *c, size_t max) {
    uint32_t n;
    if (!snap_get_u32(c, &n) || n > max) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    if (!snap_get_bytes(c, s, n)) {
        free(s);
        return NULL;
    }
    s[n] = 0;
    for (uint32_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e) {
            free(s);
            return NULL;
        }
    return s;
}

bool vm_spec_store_load(const struct snap_section *sec, struct vm_spec_store *dst, char *err, size_t errlen) {
    memset(dst, 0, sizeof *dst);
    if (!vmstate_check_version(sec, spec_vmstate.tag, spec_vmstate.version, err, errlen)) return false;
    struct snap_cursor c;
    snap_cursor_init(&c, sec);
    struct spec_numbers n = {0};
    char *group = NULL;
    bool ok = vmstate_get(&c, &spec_vmstate, &n) && (group = get_string(&c, VM_NAME_MAX)) != NULL;
    struct vm_spec *v = &dst->spec;
    if (ok) {
        snprintf(v->share_group, sizeof v->share_group, "%s", group);
        v->mem_size = n.mem_size, v->jit_cache = n.jit_cache, v->mem_min = n.mem_min, v->cpus = n.cpus;
        v->shares = n.shares, v->cap_percent = n.cap_percent, v->engine = (enum vm_engine)n.engine;
        v->mem_shares = n.mem_shares, v->virtio_console = n.virtio_console, v->no_balloon = n.no_balloon;
    }
    free(group);
    for (unsigned i = 0; ok && i < n.ndrives; i++, v->ndrives++)
        ok = (dst->strings[i] = get_string(&c, SPEC_STRING_MAX)) != NULL, v->drives[i] = dst->strings[i];
    for (unsigned i = 0; ok && i < n.nnets; i++, v->nnets++)
        ok = (dst->strings[VM_MAX_DRIVES + i] = get_string(&c, SPEC_STRING_MAX)) != NULL,
        v->nets[i] = dst->strings[VM_MAX_DRIVES + i];
    if (!ok || c.left) {
        snprintf(err, errlen, "the snapshot's VM description (section 'spec') is damaged");
        return false;
    }
    return true;
}
