/* Saving a VM's state into a snapshot and loading it into a new VM: the
 * harts' architectural state, every device's saved state, guest memory
 * and the guest clock. The container is io/snap_file.h; each part
 * declares its own fields (hart_snapshot.c, the devices' *_save/_load).
 *
 * A snapshot is loaded into a VM built (vm_create) with the configuration
 * the snapshot was taken with, and not booted: the loaded memory holds the
 * kernel, the device tree and everything since. */
#ifndef RVISOR_VM_SNAPSHOT_H
#define RVISOR_VM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/snap_file.h"

struct vm;

struct vm_snapshot_stats {
    uint64_t frames;       /* guest frames written to the snapshot */
    uint64_t zero_frames;  /* backed frames found all zero, left out */
    uint64_t aliased;      /* frames stored as another's copy (one shared machine frame) */
};

/* Writes the VM's sections. The VM must be quiescent: no hart running and
 * no device work under way (the caller holds the event loop, see
 * event_loop_hold). */
bool vm_snapshot_save(struct vm *vm, struct snap_writer *w, struct vm_snapshot_stats *st, char *err,
                      size_t errlen);

/* The parts of vm_snapshot_save, for live migration: the machine, harts
 * and devices; and memory — every frame with data (only NULL), or the
 * frames marked in `only` (a bitmap of the VM's frames), those that hold
 * no data then sent as zero. Same conditions as vm_snapshot_save, except
 * that vm_snapshot_save_ram may run while the harts run (a frame written
 * meanwhile may be torn: the dirty log marks it for the next round). */
bool vm_snapshot_save_state(struct vm *vm, struct snap_writer *w, char *err, size_t errlen);
bool vm_snapshot_save_ram(struct vm *vm, struct snap_writer *w, const uint64_t *only, struct vm_snapshot_stats *st,
                          char *err, size_t errlen);

/* Loading one section at a time, in stream order (a migration stream):
 * "vm" must come before harts and devices; memory may come at any time,
 * and a later copy of a frame wins. vm_loader_finish checks that
 * everything came. */
struct vm_loader {
    struct vm *vm;
    bool have_vm, uart, plic, aclint, rtc;
    bool vmgenid; /* optional: files from before it existed lack it */
    bool lazy;  /* memory is mapped from the VM's image (p2m_image_attach), not copied */
    unsigned harts, virtio;
    uint64_t ram_sections;
};
void vm_loader_init(struct vm_loader *l, struct vm *vm);
bool vm_loader_section(struct vm_loader *l, const struct snap_section *s, char *err, size_t errlen);
bool vm_loader_finish(struct vm_loader *l, char *err, size_t errlen);

/* Loads r into vm, which was just created with the snapshot's
 * configuration. Every section is checked before use (the file is
 * untrusted); on failure err says what was wrong and the VM must be
 * destroyed. Call vm_snapshot_resume before the VM runs. */
bool vm_snapshot_load(struct vm *vm, struct snap_reader *r, char *err, size_t errlen);

/* Makes a VM loaded from a file a new instance of the one saved (a clone,
 * as the same file may be restored again): a new generation ID and its
 * interrupt, before the harts run, so that a guest with the driver reseeds
 * its random number generator. A migrated VM stays the same instance and
 * does not call this. false if the host's entropy source failed. */
bool vm_snapshot_new_instance(struct vm *vm);

/* Lets devices look at their queues again (a notification sent before the
 * snapshot may not have been served), once the VM is about to run. */
void vm_snapshot_resume(struct vm *vm);

#endif
