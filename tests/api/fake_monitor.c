#include "fake_monitor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RING (64 * 1024)
#define INPUT 4096

struct fake_vm {
    struct fake_vm *next;
    struct vm_info info;
    char *kernel, *initrd, *append, *bios;
    uint64_t jit_cache;  /* as the spec gave it (0: the default) */
    unsigned char out[RING];
    uint64_t out_total;
    unsigned char in[INPUT];
    size_t in_len;
};

struct monitor {
    pthread_mutex_t lock;
    uint64_t total, used;
    unsigned nvms, max_vms;
    struct fake_vm *vms;
};

const char *monitor_strerror(int code) {
    switch (code < 0 ? -code : code) {
    case MON_OK: return "ok";
    case MON_ENOENT: return "no such VM";
    case MON_EEXIST: return "a VM of that name exists";
    case MON_EINVAL: return "invalid argument";
    case MON_ENOMEM: return "machine memory exhausted";
    case MON_ESTATE: return "not possible in the VM's current state";
    case MON_ELIMIT: return "too many VMs";
    }
    return "unknown error";
}

static int fail(char *err, size_t errlen, int code, const char *msg, const char *name) {
    snprintf(err, errlen, msg, name);
    return -code;
}

struct monitor *monitor_create(const struct monitor_config *cfg, char *err, size_t errlen) {
    struct monitor *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->total = cfg->machine_mem ? cfg->machine_mem : (1ull << 30);
    m->max_vms = cfg->max_vms ? cfg->max_vms : MONITOR_MAX_VMS;
    return m;
}

static void free_vm(struct fake_vm *v) {
    free(v->kernel);
    free(v->initrd);
    free(v->append);
    free(v->bios);
    free(v);
}

void monitor_destroy(struct monitor *m) {
    while (m->vms) {
        struct fake_vm *v = m->vms;
        m->vms = v->next;
        free_vm(v);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct fake_vm *find(struct monitor *m, const char *name) {
    for (struct fake_vm *v = m->vms; v; v = v->next)
        if (strcmp(v->info.name, name) == 0) return v;
    return NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int monitor_vm_create(struct monitor *m, const struct vm_spec *spec, char *err, size_t errlen) {
    size_t n = strnlen(spec->name, sizeof spec->name);
    if (n == 0 || n > VM_NAME_MAX) return fail(err, errlen, MON_EINVAL, "bad name '%s'", spec->name);
    if (spec->kernel && access(spec->kernel, R_OK) != 0)
        return fail(err, errlen, MON_EINVAL, "cannot open kernel %s", spec->kernel);
    if (spec->cpus < 1 || spec->cap_percent > 100) return fail(err, errlen, MON_EINVAL, "bad spec for %s", spec->name);
    pthread_mutex_lock(&m->lock);
    int rc = 0;
    if (find(m, spec->name)) {
        rc = fail(err, errlen, MON_EEXIST, "a VM named '%s' exists", spec->name);
    } else if (m->nvms >= m->max_vms) {
        rc = fail(err, errlen, MON_ELIMIT, "the monitor already holds as many VMs as it may (not %s)", spec->name);
    } else if (m->total - m->used < FAKE_VM_FOOTPRINT) {
        rc = fail(err, errlen, MON_ENOMEM, "machine memory exhausted while loading %s", spec->name);
    } else {
        struct fake_vm *v = calloc(1, sizeof *v);
        snprintf(v->info.name, sizeof v->info.name, "%s", spec->name);
        v->info.state = VMS_CREATED;
        v->info.cpus = spec->cpus;
        v->info.shares = spec->shares;
        v->info.cap_percent = spec->cap_percent;
        v->info.mem_size = spec->mem_size;
        v->info.mem_backed = FAKE_VM_FOOTPRINT;
        v->info.has_balloon = !spec->no_balloon;
        /* As vm_create resolves it on an x86-64 host. */
        v->info.engine = spec->engine == VM_ENGINE_DEFAULT ? VM_ENGINE_JIT : spec->engine;
        v->jit_cache = spec->jit_cache;
        if (v->info.has_balloon) {
            /* A guest that has sent its figures once. */
            v->info.balloon.target = v->info.balloon.actual = spec->mem_size;
            v->info.balloon.has_stats = true;
            v->info.balloon.stats_age_ms = 1500;
            v->info.balloon.stats.total = spec->mem_size - (8 << 20);
            v->info.balloon.stats.free = spec->mem_size / 2;
            v->info.balloon.stats.minor_faults = 4321;
            v->info.balloon.stats.valid = VM_STAT_TOTAL | VM_STAT_FREE | VM_STAT_MINOR_FAULTS;
        }
        v->kernel = dup_or_null(spec->kernel);
        v->initrd = dup_or_null(spec->initrd);
        v->append = dup_or_null(spec->append);
        v->bios = dup_or_null(spec->bios);
        m->used += FAKE_VM_FOOTPRINT;
        m->nvms++;
        v->next = m->vms;
        m->vms = v;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Moves a VM from state `from` (any if -1) to `to`. */
static int transition(struct monitor *m, const char *name, int from, enum vm_run_state to, char *err, size_t errlen) {
    pthread_mutex_lock(&m->lock);
    struct fake_vm *v = find(m, name);
    int rc = 0;
    if (!v) {
        rc = fail(err, errlen, MON_ENOENT, "no VM named '%s'", name);
    } else if (from >= 0 ? (int)v->info.state != from : v->info.state == VMS_STOPPED) {
        rc = fail(err, errlen, MON_ESTATE, "VM '%s' is not in the right state", name);
    } else {
        v->info.state = to;
        v->info.instructions += 1000;
        v->info.cpu_ns += 1500000;
        if (v->info.engine == VM_ENGINE_JIT) { /* the pretend translator made a few blocks */
            v->info.jit.blocks += 10;
            v->info.jit.insns += 80;
            v->info.jit.code_bytes += 4096;
            v->info.jit.translate_ns += 250000;
            v->info.jit.dispatches += 5;
        }
        if (to == VMS_STOPPED) {
            v->info.exit_status = 6;
            snprintf(v->info.exit_message, sizeof v->info.exit_message, "stopped by the monitor");
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int monitor_vm_start(struct monitor *m, const char *name, char *err, size_t errlen) {
    return transition(m, name, VMS_CREATED, VMS_RUNNING, err, errlen);
}
int monitor_vm_pause(struct monitor *m, const char *name, char *err, size_t errlen) {
    return transition(m, name, VMS_RUNNING, VMS_PAUSED, err, errlen);
}
int monitor_vm_resume(struct monitor *m, const char *name, char *err, size_t errlen) {
    return transition(m, name, VMS_PAUSED, VMS_RUNNING, err, errlen);
}
int monitor_vm_stop(struct monitor *m, const char *name, char *err, size_t errlen) {
    return transition(m, name, -1, VMS_STOPPED, err, errlen);
}

int monitor_vm_destroy(struct monitor *m, const char *name, char *err, size_t errlen) {
    pthread_mutex_lock(&m->lock);
    for (struct fake_vm **p = &m->vms; *p; p = &(*p)->next) {
        if (strcmp((*p)->info.name, name) == 0) {
            struct fake_vm *v = *p;
            *p = v->next;
            m->used -= FAKE_VM_FOOTPRINT;
            m->nvms--;
            pthread_mutex_unlock(&m->lock);
            free_vm(v);
            return 0;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return fail(err, errlen, MON_ENOENT, "no VM named '%s'", name);
}

int monitor_vm_balloon(struct monitor *m, const char *name, uint64_t bytes, char *err, size_t errlen) {
    pthread_mutex_lock(&m->lock);
    struct fake_vm *v = find(m, name);
    int rc = 0;
    if (!v) {
        rc = fail(err, errlen, MON_ENOENT, "no VM named '%s'", name);
    } else if (v->info.state == VMS_STOPPED) {
        rc = fail(err, errlen, MON_ESTATE, "VM '%s' is stopped", name);
    } else if (!v->info.has_balloon) {
        rc = fail(err, errlen, MON_EINVAL, "VM '%s' has no balloon device", name);
    } else {
        /* The pretend guest complies at once, and its balloon holds what the target leaves. */
        uint64_t keep = bytes < v->info.mem_size ? bytes : v->info.mem_size;
        v->info.balloon.target = v->info.balloon.actual = keep;
        v->info.balloon.balloon = v->info.mem_size - keep;
        v->info.balloon.freed += v->info.mem_size - keep;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int monitor_vm_info(struct monitor *m, const char *name, struct vm_info *out) {
    pthread_mutex_lock(&m->lock);
    struct fake_vm *v = find(m, name);
    if (v) *out = v->info;
    pthread_mutex_unlock(&m->lock);
    return v ? 0 : -MON_ENOENT;
}

size_t monitor_vm_list(struct monitor *m, struct vm_info *out, size_t max) {
    size_t n = 0;
    pthread_mutex_lock(&m->lock);
    for (struct fake_vm *v = m->vms; v; v = v->next, n++)
        if (n < max) out[n] = v->info;
    pthread_mutex_unlock(&m->lock);
    return n;
}

size_t monitor_console_read(struct monitor *m, const char *name, uint64_t *pos, void *buf, size_t len) {
    size_t n = 0;
    pthread_mutex_lock(&m->lock);
    struct fake_vm *v = find(m, name);
    if (v) {
        uint64_t oldest = v->out_total > RING ? v->out_total - RING : 0;
        if (*pos < oldest) *pos = oldest;
        while (n < len && *pos < v->out_total) ((unsigned char *)buf)[n++] = v->out[(*pos)++ % RING];
    }
    pthread_mutex_unlock(&m->lock);
    return n;
}

long monitor_console_write(struct monitor *m, const char *name, const void *buf, size_t len) {
    pthread_mutex_lock(&m->lock);
    struct fake_vm *v = find(m, name);
    long n = -1;
    if (v) {
        size_t room = INPUT - v->in_len;
        n = (long)(len < room ? len : room);
        memcpy(v->in + v->in_len, buf, (size_t)n);
        v->in_len += (size_t)n;
    }
    pthread_mutex_unlock(&m->lock);
    return n;
}

void monitor_memory(struct monitor *m, uint64_t *total_bytes, uint64_t *free_bytes) {
    pthread_mutex_lock(&m->lock);
    *total_bytes = m->total;
    *free_bytes = m->total - m->used;
    pthread_mutex_unlock(&m->lock);
}

void monitor_sharing(struct monitor *m, struct monitor_sharing *out) {
    (void)m;
    memset(out, 0, sizeof *out);
}

void monitor_swap(struct monitor *m, struct monitor_swap *out) {
    (void)m;
    memset(out, 0, sizeof *out);
    out->state = "high";
}

void fake_console_output(struct monitor *m, const char *name, const void *buf, size_t len) {
    pthread_mutex_lock(&m->lock);
    struct fake_vm *v = find(m, name);
    if (v) {
        for (size_t i = 0; i < len; i++) v->out[(v->out_total + i) % RING] = ((const unsigned char *)buf)[i];
        v->out_total += len;
    }
    pthread_mutex_unlock(&m->lock);
}

size_t fake_console_input(struct monitor *m, const char *name, void *buf, size_t len) {
    pthread_mutex_lock(&m->lock);
    struct fake_vm *v = find(m, name);
    size_t n = 0;
    if (v) {
        n = v->in_len < len ? v->in_len : len;
        memcpy(buf, v->in, n);
        memmove(v->in, v->in + n, v->in_len - n);
        v->in_len -= n;
    }
    pthread_mutex_unlock(&m->lock);
    return n;
}

uint64_t fake_jit_cache(struct monitor *m, const char *name) {
    pthread_mutex_lock(&m->lock);
    struct fake_vm *v = find(m, name);
    uint64_t n = v ? v->jit_cache : 0;
    pthread_mutex_unlock(&m->lock);
    return n;
}

void fake_guest_exit(struct monitor *m, const char *name, int status, const char *message) {
    pthread_mutex_lock(&m->lock);
    struct fake_vm *v = find(m, name);
    if (v) {
        v->info.state = VMS_STOPPED;
        v->info.exit_status = status;
        snprintf(v->info.exit_message, sizeof v->info.exit_message, "%s", message);
    }
    pthread_mutex_unlock(&m->lock);
}

/* Snapshots: the pretend VM's shape in a small text file. */
int monitor_vm_snapshot(struct monitor *m, const char *name, const char *path, unsigned flags,
                        struct monitor_snapshot_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->lock);
    struct fake_vm *v = find(m, name);
    int rc = 0;
    if (!v) rc = fail(err, errlen, MON_ENOENT, "no VM named '%s'", name);
    else if (v->info.state != VMS_RUNNING && v->info.state != VMS_PAUSED)
        rc = fail(err, errlen, MON_ESTATE, "VM '%s' is not running or paused", name);
    else {
        FILE *f = fopen(path, "w");
        if (!f) rc = fail(err, errlen, MON_EINVAL, "cannot write %s", path);
        else {
            fprintf(f, "fake-snapshot %u %llu\n", v->info.cpus, (unsigned long long)v->info.mem_size);
            out->bytes = (uint64_t)ftell(f);
            fclose(f);
            out->frames = 1;
            if (flags & MONITOR_SNAPSHOT_STOP) v->info.state = VMS_PAUSED;
            out->direct = (flags & MONITOR_SNAPSHOT_DIRECT) != 0;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int monitor_vm_restore(struct monitor *m, const char *path, const char *name, bool paused,
                       struct monitor_snapshot_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    unsigned cpus = 0;
    unsigned long long mem = 0;
    bool ok = f && fscanf(f, "fake-snapshot %u %llu", &cpus, &mem) == 2;
    if (f) fclose(f);
    if (!ok) return fail(err, errlen, MON_EINVAL, "%s: not an rvisor snapshot", path);
    struct vm_spec spec = {.cpus = cpus, .mem_size = mem, .shares = 1000};
    snprintf(spec.name, sizeof spec.name, "%s", name);
    int rc = monitor_vm_create(m, &spec, err, errlen);
    if (rc) return rc;
    pthread_mutex_lock(&m->lock);
    find(m, name)->info.state = paused ? VMS_PAUSED : VMS_RUNNING;
    pthread_mutex_unlock(&m->lock);
    out->bytes = 24;
    return 0;
}

/* Migration: the pretend VM leaves for a target that accepts "tcp:" only. */
int monitor_vm_migrate(struct monitor *m, const char *name, const char *uri, unsigned downtime_ms,
                       struct monitor_migrate_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (strncmp(uri, "tcp:", 4) != 0) return fail(err, errlen, MON_EINVAL, "'%s' is not tcp:HOST:PORT", uri);
    pthread_mutex_lock(&m->lock);
    struct fake_vm *v = find(m, name);
    pthread_mutex_unlock(&m->lock);
    if (!v) return fail(err, errlen, MON_ENOENT, "no VM named '%s'", name);
    out->rounds = 2;
    out->downtime_ns = (uint64_t)(downtime_ms ? downtime_ms : 300) * 1000;
    out->bytes = 4096;
    return monitor_vm_destroy(m, name, err, errlen);
}

int monitor_listen_incoming(struct monitor *m, const char *uri, char *err, size_t errlen) {
    (void)m;
    return fail(err, errlen, MON_EINVAL, "the fake monitor cannot listen on %s", uri);
}
