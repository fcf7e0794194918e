/* Snapshot and restore of a monitor's VMs (vm/snapshot.h does the VM's
 * sections; this file pauses, holds and names things). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/event_loop.h"
#include "monitor/monitor_internal.h"
#include "vm/snapshot.h"

#define SNAPSHOT_MAX_BYTES (1ull << 40) /* a snapshot file larger than this is refused */

/* Stops e (lock not held): no worker runs it when this returns. */
static void stop_vm(struct monitor *m, struct vm_entry *e) {
    pthread_mutex_lock(&m->lock);
    e->state = VMS_PAUSED;
    monitor_wait_not_running(m, e);
    pthread_mutex_unlock(&m->lock);
}

/* The frames written since the dirty log started, the VM stopped. */
static bool collect_all(struct p2m *mem, uint64_t **out) {
    size_t words = (size_t)(mem->nframes + 63) / 64;
    *out = calloc(words ? words : 1, sizeof **out);
    return *out && p2m_dirty_collect_paused(mem, *out);
}

/* Captures e's state into w. A running VM's memory is copied first while
 * it runs, with the dirty log on (as a migration's first round); then the
 * VM is stopped and the event loop held, so that no hart and no device
 * changes anything while the frames it wrote meanwhile and its harts' and
 * devices' state are read — the pause is that last step only. A later
 * copy of a frame in the file supersedes the earlier one (vm/snapshot.h). */
static bool capture(struct monitor *m, struct vm_entry *e, bool live, struct snap_writer *w,
                    struct monitor_snapshot_result *out, char *err, size_t errlen) {
    struct vm *vm = e->vm;
    struct vm_snapshot_stats st = {0}, last = {0};
    bool ok = vm_spec_store_save(&e->spec, w);
    live = live && ok && p2m_dirty_start(&vm->mem);
    if (live) ok = vm_snapshot_save_ram(vm, w, NULL, &st, err, errlen);
    stop_vm(m, e);
    uint64_t t0 = monitor_now_ns();
    event_loop_hold(m->loop);
    uint64_t *dirty = NULL;
    if (!live) ok = ok && vm_snapshot_save(vm, w, &last, err, errlen);
    else ok = ok && collect_all(&vm->mem, &dirty) && vm_snapshot_save_ram(vm, w, dirty, &last, err, errlen) &&
              vm_snapshot_save_state(vm, w, err, errlen);
    event_loop_release(m->loop);
    out->pause_ns = monitor_now_ns() - t0;
    if (live) p2m_dirty_stop(&vm->mem);
    free(dirty);
    out->frames = st.frames + last.frames;
    out->aliased = st.aliased + last.aliased;
    if (!ok && snap_writer_error(w)) snprintf(err, errlen, "%s", snap_writer_error(w));
    return ok;
}

int monitor_vm_snapshot(struct monitor *m, const char *name, const char *path, unsigned flags,
                        struct monitor_snapshot_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    uint64_t t0 = monitor_now_ns();
    int rc = 0;
    struct vm_entry *e = monitor_locked_entry(m, name, err, errlen, &rc);
    if (!e) return rc;
    if (e->busy) rc = monitor_fail(err, errlen, MON_ESTATE, "VM '%s' is %s", name, e->busy);
    else if (e->state != VMS_RUNNING && e->state != VMS_PAUSED)
        rc = monitor_fail(err, errlen, MON_ESTATE, "VM '%s' is %s: only a running or paused VM can be snapshotted", name,
                  e->state == VMS_CREATED ? "not started" : "stopped");
    if (rc) {
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    bool was_running = e->state == VMS_RUNNING;
    e->busy = "being snapshotted";
    pthread_mutex_unlock(&m->lock);

    char why[512] = "";
    struct snap_writer *w = snap_writer_create(path, why, sizeof why);
    if (w && (flags & MONITOR_SNAPSHOT_DIRECT)) out->direct = snap_writer_direct(w);
    bool ok = w && capture(m, e, was_running, w, out, why, sizeof why);
    if (w) out->bytes = snap_writer_bytes(w) + SNAP_HEADER_SIZE;

    pthread_mutex_lock(&m->lock);
    e->busy = NULL;
    if (was_running && !(flags & MONITOR_SNAPSHOT_STOP) && e->state == VMS_PAUSED) {
        e->state = VMS_RUNNING;
        monitor_make_runnable(m, e);
    }
    pthread_mutex_unlock(&m->lock);
    /* The file is completed and made durable with the VM running again. */
    if (w && ok) ok = snap_writer_commit(w, why, sizeof why);
    else if (w) snap_writer_abort(w);
    out->total_ns = monitor_now_ns() - t0;
    return ok ? 0 : monitor_fail(err, errlen, MON_EINVAL, "cannot snapshot '%s' to %s: %s", name, path, why);
}

static bool restore_fill(struct vm *vm, void *ctx, char *why, size_t whylen) {
    if (!vm_snapshot_load(vm, ctx, why, whylen)) return false;
    if (!vm_snapshot_new_instance(vm)) {
        snprintf(why, whylen, "the host's random number generator failed");
        return false;
    }
    vm_snapshot_resume(vm);
    return true;
}

int monitor_vm_restore(struct monitor *m, const char *path, const char *name, bool paused,
                       struct monitor_snapshot_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    uint64_t t0 = monitor_now_ns();
    char why[512];
    struct snap_reader *r = snap_reader_open(path, SNAPSHOT_MAX_BYTES, why, sizeof why);
    if (!r) return monitor_fail(err, errlen, MON_EINVAL, "%s", why);
    struct snap_section sec;
    struct vm_spec_store store;
    int rc;
    if (!snap_reader_find(r, "spec", &sec)) {
        memset(&store, 0, sizeof store);
        rc = monitor_fail(err, errlen, MON_EINVAL, "%s: the snapshot does not describe its VM (no 'spec' section)", path);
    } else if (!vm_spec_store_load(&sec, &store, why, sizeof why)) {
        rc = monitor_fail(err, errlen, MON_EINVAL, "%s: %s", path, why);
    } else {
        snprintf(store.spec.name, sizeof store.spec.name, "%s", name);
        rc = monitor_build_vm(m, &store.spec, restore_fill, r, paused ? VMS_PAUSED : VMS_RUNNING, err, errlen);
        if (rc == 0) {
            struct stat sb;
            out->bytes = fstat(snap_reader_fd(r), &sb) == 0 ? (uint64_t)sb.st_size : 0;
            out->total_ns = monitor_now_ns() - t0;
        }
    }
    vm_spec_store_free(&store);
    snap_reader_close(r);
    return rc;
}

