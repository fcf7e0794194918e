/* Saved-state tables: see vmstate.h. */
#include "io/vmstate.h"

#include <stdio.h>
#include <string.h>

size_t vmstate_size(const struct vmstate *vs) {
    size_t n = 0;
    for (size_t i = 0; i < vs->nfields; i++) n += (size_t)vs->fields[i].size * vs->fields[i].count;
    return n;
}

/* The host is little-endian (x86-64), as the file is: elements are copied
 * as they are. */
bool vmstate_put(struct snap_writer *w, const struct vmstate *vs, const void *state) {
    const uint8_t *base = state;
    for (size_t i = 0; i < vs->nfields; i++) {
        const struct vmstate_field *f = &vs->fields[i];
        if (!snap_write(w, base + f->offset, (size_t)f->size * f->count)) return false;
    }
    return true;
}

static uint64_t element(const uint8_t *p, unsigned size) {
    uint64_t v = 0;
    memcpy(&v, p, size);
    return v;
}

static bool field_valid(const struct vmstate_field *f, const uint8_t *p) {
    for (uint32_t k = 0; k < f->count; k++) {
        uint64_t v = element(p + (size_t)k * f->size, f->size);
        if (f->kind == VMSTATE_BOOL && v > 1) return false;
        if (f->max && v > f->max) return false;
    }
    return true;
}

bool vmstate_get(struct snap_cursor *c, const struct vmstate *vs, void *state) {
    uint8_t *base = state;
    uint8_t buf[4096];
    for (size_t i = 0; i < vs->nfields; i++) {
        const struct vmstate_field *f = &vs->fields[i];
        size_t len = (size_t)f->size * f->count;
        /* Validated in a scratch copy first, so a bool never holds 2. */
        for (size_t done = 0; done < len;) {
            size_t chunk = len - done < sizeof buf ? len - done : sizeof buf;
            chunk -= chunk % f->size;
            if (!snap_get_bytes(c, buf, chunk)) return false;
            struct vmstate_field part = *f;
            part.count = (uint32_t)(chunk / f->size);
            if (!field_valid(&part, buf)) {
                c->bad = true;
                return false;
            }
            memcpy(base + f->offset + done, buf, chunk);
            done += chunk;
        }
    }
    return true;
}

bool vmstate_save(struct snap_writer *w, const struct vmstate *vs, const void *state) {
    return snap_section_begin(w, vs->tag, vs->version) && vmstate_put(w, vs, state) && snap_section_end(w);
}

bool vmstate_check_version(const struct snap_section *s, const char *tag, uint32_t version, char *err,
                           size_t errlen) {
    if (s->version == version) return true;
    snprintf(err, errlen, "section '%s' has version %u, this rvisor reads version %u", tag, s->version, version);
    return false;
}

bool vmstate_load(const struct snap_section *s, const struct vmstate *vs, void *state, char *err, size_t errlen) {
    if (!vmstate_check_version(s, vs->tag, vs->version, err, errlen)) return false;
    if (s->len != vmstate_size(vs)) {
        snprintf(err, errlen, "section '%s' is %llu bytes, expected %zu", vs->tag, (unsigned long long)s->len,
                 vmstate_size(vs));
        return false;
    }
    struct snap_cursor c;
    snap_cursor_init(&c, s);
    if (!vmstate_get(&c, vs, state)) {
        snprintf(err, errlen, "section '%s' holds a value out of range", vs->tag);
        return false;
    }
    return true;
}
