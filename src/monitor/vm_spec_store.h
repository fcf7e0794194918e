/* A VM's creation spec kept for its lifetime and saved in its snapshots:
 * struct vm_spec points at the caller's strings, which are gone once
 * create returns, so the monitor keeps a copy that owns them. A snapshot
 * records how the VM was built (memory, harts, engine, devices with their
 * option strings, allocation settings), so that restore can build the
 * same machine before loading its state. Kernel, initrd, command line and
 * firmware are not kept: a restored VM is not booted. */
#ifndef RVISOR_VM_SPEC_STORE_H
#define RVISOR_VM_SPEC_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "io/snap_file.h"
#include "monitor/monitor.h"

struct vm_spec_store {
    struct vm_spec spec;                          /* drives and nets point into strings below */
    char *strings[VM_MAX_DRIVES + VM_MAX_NETS];
};

/* Copies src's devices and settings (not kernel, initrd, append, bios). */
bool vm_spec_store_copy(struct vm_spec_store *dst, const struct vm_spec *src);
void vm_spec_store_free(struct vm_spec_store *s);

/* Section "spec", version 1. */
bool vm_spec_store_save(const struct vm_spec_store *s, struct snap_writer *w);
/* Reads a section written by vm_spec_store_save into dst (freed by the
 * caller with vm_spec_store_free, also on failure). */
bool vm_spec_store_load(const struct snap_section *sec, struct vm_spec_store *dst, char *err, size_t errlen);

#endif
