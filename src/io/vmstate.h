/* Saved-state descriptions (QEMU's vmstate, in small): a device or the
 * hart declares the fields of its architectural state once, as a table
 * over a plain struct, and the same table writes that struct into a
 * snapshot section and reads it back. The encoding is the fields in table
 * order, each as `count` little-endian integers of `size` bytes, so it
 * does not depend on the struct's layout or padding; the section's version
 * says which table wrote it.
 *
 * Loading treats the bytes as hostile: lengths must match the table
 * exactly, booleans must be 0 or 1, and a field's `max` (if nonzero)
 * bounds every element, so an index read from a file can be used as one. */
#ifndef RVISOR_VMSTATE_H
#define RVISOR_VMSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/snap_file.h"

enum vmstate_kind { VMSTATE_UINT, VMSTATE_BOOL };

struct vmstate_field {
    const char *name;
    enum vmstate_kind kind;
    uint32_t offset;  /* in the struct */
    uint32_t size;    /* of one element: 1, 2, 4 or 8 */
    uint32_t count;   /* elements (1 for a scalar) */
    uint64_t max;     /* largest value accepted on load; 0: any */
};

struct vmstate {
    const char *tag;      /* section tag, 1..7 characters */
    uint32_t version;     /* bumped whenever the table changes */
    const struct vmstate_field *fields;
    size_t nfields;
};

#define VMSTATE_MEMBER_SIZE(type, m) sizeof(((type *)0)->m)
#define VMSTATE_ELEM_SIZE(type, m) sizeof(((type *)0)->m[0])
/* An unsigned integer member. */
#define VMSTATE_U(type, m) {#m, VMSTATE_UINT, offsetof(type, m), VMSTATE_MEMBER_SIZE(type, m), 1, 0}
/* An unsigned integer member no larger than max. */
#define VMSTATE_U_MAX(type, m, mx) {#m, VMSTATE_UINT, offsetof(type, m), VMSTATE_MEMBER_SIZE(type, m), 1, (mx)}
#define VMSTATE_BOOL(type, m) {#m, VMSTATE_BOOL, offsetof(type, m), sizeof(bool), 1, 0}
/* An array of unsigned integers (bytes included). */
#define VMSTATE_ARRAY(type, m)                                                                       \
    {#m, VMSTATE_UINT, offsetof(type, m), VMSTATE_ELEM_SIZE(type, m),                                \
     VMSTATE_MEMBER_SIZE(type, m) / VMSTATE_ELEM_SIZE(type, m), 0}
#define VMSTATE_TABLE(tag, version, fields) {tag, version, fields, sizeof fields / sizeof fields[0]}

/* Bytes the table's fields take in a section. */
size_t vmstate_size(const struct vmstate *vs);

/* Writes the fields of `state` into the section being written. */
bool vmstate_put(struct snap_writer *w, const struct vmstate *vs, const void *state);
/* Reads them from c into `state`; false (c->bad set) if the bytes run
 * out or a value is out of range. Fields not in the table are untouched. */
bool vmstate_get(struct snap_cursor *c, const struct vmstate *vs, void *state);

/* A whole section holding one struct: vs->tag, vs->version, its fields. */
bool vmstate_save(struct snap_writer *w, const struct vmstate *vs, const void *state);
/* Loads a section written by vmstate_save: its version must be vs's and
 * its length exact. On failure err names the section and state may be
 * partly written. */
bool vmstate_load(const struct snap_section *s, const struct vmstate *vs, void *state, char *err, size_t errlen);

/* For sections with more than one struct: checks the section's version
 * (err: "section 'tag' has version N, this rvisor reads M"). */
bool vmstate_check_version(const struct snap_section *s, const char *tag, uint32_t version, char *err,
                           size_t errlen);

#endif
