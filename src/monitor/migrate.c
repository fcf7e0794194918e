/* Live migration of a monitor's VMs between monitors, over TCP, by
 * pre-copy (as QEMU's): the VM runs while its memory is sent, then the
 * frames it wrote meanwhile are sent again, round after round, until what
 * is left can be sent within the downtime limit; then it is stopped, the
 * rest and its harts' and devices' state are sent, and the target starts
 * it. If anything fails before the target has said it runs the VM, the VM
 * runs on here; once it has, the VM is destroyed here.
 *
 * The stream is a snapshot stream (io/snap_file.h): "migrate" (the VM's
 * name), "spec" (how it was built), "ram" sections round after round,
 * "zero" runs for frames that became zero, a "sync" the target answers
 * with a line "SYNC" once it has loaded all before it (so the last round
 * is not queued behind a backlog), then the last round, the VM's state
 * sections (vm/snapshot.h), "end". The target answers one line: "OK" or
 * "ERR why". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/event_loop.h"
#include "monitor/monitor_internal.h"
#include "vm/snapshot.h"

#define MIGRATE_VERSION 1
#define CONNECT_TIMEOUT_MS 5000
#define REPLY_TIMEOUT_MS 60000        /* the target loads the last round and starts the VM */
#define STREAM_TIMEOUT_MS 30000       /* a source silent for longer is given up on */
#define MIGRATE_MAX_SECTION (64ull << 20)
#define MAX_ROUNDS 30

static bool parse_tcp_uri(const char *uri, struct sockaddr_in *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    const char *rest = strncmp(uri, "tcp:", 4) == 0 ? uri + 4 : NULL;
    const char *colon = rest ? strrchr(rest, ':') : NULL;
    if (!colon) {
        snprintf(err, errlen, "'%s' is not tcp:HOST:PORT", uri);
        return false;
    }
    char host[64];
    size_t hl = (size_t)(colon - rest);
    if (hl >= sizeof host) {
        snprintf(err, errlen, "'%s': the host is too long (give an IPv4 address)", uri);
        return false;
    }
    memcpy(host, rest, hl);
    host[hl] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 1 || port > 65535) {
        snprintf(err, errlen, "'%s': the port must be a number from 1 to 65535", uri);
        return false;
    }
    out->sin_port = htons((uint16_t)port);
    if (!host[0] || !strcmp(host, "0.0.0.0")) out->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (!strcmp(host, "localhost")) out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &out->sin_addr) != 1) {
        snprintf(err, errlen, "'%s': the host must be an IPv4 address or localhost", uri);
        return false;
    }
    return true;
}

/* ---- the source ---- */

static int connect_to(const struct sockaddr_in *sa, char *err, size_t errlen) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0 && errno != EINPROGRESS) {
        snprintf(err, errlen, "cannot connect to the target: %s", strerror(errno));
        close(fd);
        return -1;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (poll(&p, 1, CONNECT_TIMEOUT_MS) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr) {
        snprintf(err, errlen, "cannot connect to the target: %s", soerr ? strerror(soerr) : "timed out");
        close(fd);
        return -1;
    }
    /* Blocking from here: the stream is written by one thread. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* One line from the target ("OK", "SYNC" or "ERR why"), without its newline. */
static bool read_line(int fd, int timeout_ms, char *line, size_t size, char *err, size_t errlen) {
    size_t n = 0;
    while (n + 1 < size) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) != 1) {
            snprintf(err, errlen, "the target did not answer");
            return false;
        }
        ssize_t k = read(fd, line + n, 1);
        if (k <= 0) {
            snprintf(err, errlen, "the target closed the connection before it ran the VM");
            return false;
        }
        if (line[n] == '\n') break;
        n++;
    }
    line[n] = 0;
    return true;
}

/* The target's answer: want ("OK" or "SYNC"), else its reason. */
static bool read_reply(int fd, int timeout_ms, const char *want, char *err, size_t errlen) {
    char line[512];
    if (!read_line(fd, timeout_ms, line, sizeof line, err, errlen)) return false;
    if (strcmp(line, want) == 0) return true;
    snprintf(err, errlen, "the target refused the VM: %.400s", strncmp(line, "ERR ", 4) ? line : line + 4);
    return false;
}

struct outgoing {
    int fd;
    struct monitor *m;
    struct vm_entry *e;
    struct snap_writer *w;
    uint64_t *dirty;
    uint64_t downtime_ns;
    struct monitor_migrate_result *out;
};

static bool send_header(struct outgoing *o) {
    size_t len = strlen(o->e->name);
    return snap_section_begin(o->w, "migrate", MIGRATE_VERSION) && snap_write_u32(o->w, (uint32_t)len) &&
           snap_write(o->w, o->e->name, len) && snap_section_end(o->w) && vm_spec_store_save(&o->e->spec, o->w);
}

/* Lowers a VM that dirties memory faster than the link carries it: its
 * cap halves each round that did not converge (down to 10% of a core). */
static void throttle(struct outgoing *o) {
    pthread_mutex_lock(&o->m->lock);
    unsigned cap = o->e->cap_percent ? o->e->cap_percent : 100;
    o->e->cap_percent = cap / 2 > 10 ? cap / 2 : 10;
    pthread_mutex_unlock(&o->m->lock);
    o->out->throttled = true;
}

/* Waits until the target has loaded everything sent so far: it answers a
 * "sync" section once it has read it. */
static bool sync_target(struct outgoing *o, char *err, size_t errlen) {
    if (!snap_section_begin(o->w, "sync", MIGRATE_VERSION) || !snap_section_end(o->w)) {
        snprintf(err, errlen, "%s", snap_writer_error(o->w) ? snap_writer_error(o->w) : "write failed");
        return false;
    }
    return read_reply(o->fd, REPLY_TIMEOUT_MS, "SYNC", err, errlen);
}

/* Memory while the VM runs, until what it dirties fits the downtime. */
static bool precopy(struct outgoing *o, char *err, size_t errlen) {
    struct vm *vm = o->e->vm;
    struct vm_snapshot_stats st;
    uint64_t t0 = monitor_now_ns();
    if (!vm_snapshot_save_ram(vm, o->w, NULL, &st, err, errlen)) return false;
    o->out->frames += st.frames;
    o->out->rounds = 1;
    uint64_t bytes0 = snap_writer_bytes(o->w), prev_dirty = UINT64_MAX;
    double rate = (double)bytes0 / (double)(monitor_now_ns() - t0 + 1); /* bytes per ns */
    for (;;) {
        uint64_t n = p2m_dirty_collect(&vm->mem, o->dirty, NULL);
        double eta = (double)n * PAGE_SIZE / rate;
        /* Converged (or given up on): these go too, then the target is
         * let catch up, so that the downtime is the last round's alone. */
        if (eta <= (double)o->downtime_ns || o->out->rounds >= MAX_ROUNDS) {
            bool ok = vm_snapshot_save_ram(vm, o->w, o->dirty, &st, err, errlen) && sync_target(o, err, errlen);
            o->out->frames += st.frames;
            o->out->rounds++;
            memset(o->dirty, 0, (size_t)(vm->mem.nframes + 63) / 64 * sizeof *o->dirty);
            return ok;
        }
        if (o->out->rounds >= 3 && n * 10 > prev_dirty * 8) throttle(o);
        prev_dirty = n;
        uint64_t t = monitor_now_ns(), before = snap_writer_bytes(o->w);
        if (!vm_snapshot_save_ram(vm, o->w, o->dirty, &st, err, errlen)) return false;
        o->out->frames += st.frames;
        o->out->rounds++;
        uint64_t sent = snap_writer_bytes(o->w) - before;
        if (sent > (1 << 20)) rate = (double)sent / (double)(monitor_now_ns() - t + 1);
    }
}

/* The VM stopped: the last frames, its state, the end. */
static bool stop_and_copy(struct outgoing *o, char *err, size_t errlen) {
    struct vm *vm = o->e->vm;
    struct vm_snapshot_stats st = {0};
    event_loop_hold(o->m->loop);
    bool ok = p2m_dirty_collect_paused(&vm->mem, o->dirty);
    if (!ok) snprintf(err, errlen, "out of host memory");
    ok = ok && vm_snapshot_save_ram(vm, o->w, o->dirty, &st, err, errlen) && vm_snapshot_save_state(vm, o->w, err, errlen);
    event_loop_release(o->m->loop);
    o->out->frames += st.frames;
    o->out->rounds++;
    return ok;
}

int monitor_vm_migrate(struct monitor *m, const char *name, const char *uri, unsigned downtime_ms,
                       struct monitor_migrate_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    uint64_t t0 = monitor_now_ns();
    char why[512] = "";
    struct sockaddr_in sa;
    if (!parse_tcp_uri(uri, &sa, why, sizeof why)) return monitor_fail(err, errlen, MON_EINVAL, "%s", why);
    int rc = 0;
    struct vm_entry *e = monitor_locked_entry(m, name, err, errlen, &rc);
    if (!e) return rc;
    if (e->busy) rc = monitor_fail(err, errlen, MON_ESTATE, "VM '%s' is %s", name, e->busy);
    else if (e->state != VMS_RUNNING && e->state != VMS_PAUSED)
        rc = monitor_fail(err, errlen, MON_ESTATE, "VM '%s' is not running or paused", name);
    if (rc) {
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    e->busy = "being migrated";
    bool was_running = e->state == VMS_RUNNING;
    unsigned cap = e->cap_percent;
    pthread_mutex_unlock(&m->lock);

    struct outgoing o = {-1, m, e, NULL, NULL, (uint64_t)(downtime_ms ? downtime_ms : MONITOR_DOWNTIME_MS) * 1000000ull, out};
    size_t words = (size_t)(e->vm->mem.nframes + 63) / 64;
    o.dirty = calloc(words ? words : 1, sizeof *o.dirty);
    int fd = o.dirty ? connect_to(&sa, why, sizeof why) : -1;
    if (!o.dirty) snprintf(why, sizeof why, "out of host memory");
    o.fd = fd;
    bool ok = fd >= 0 && (o.w = snap_writer_fd(fd, why, sizeof why)) != NULL;
    ok = ok && p2m_dirty_start(&e->vm->mem);
    ok = ok && send_header(&o) && precopy(&o, why, sizeof why);
    uint64_t t_stop = 0;
    if (ok) {
        pthread_mutex_lock(&m->lock);
        if (e->state == VMS_RUNNING || e->state == VMS_PAUSED) {
            e->state = VMS_PAUSED;
            monitor_wait_not_running(m, e);
        } else {
            snprintf(why, sizeof why, "the VM stopped meanwhile");
            ok = false;
        }
        pthread_mutex_unlock(&m->lock);
        t_stop = monitor_now_ns();
        ok = ok && stop_and_copy(&o, why, sizeof why);
    }
    if (o.w) {
        const char *werr = snap_writer_error(o.w);
        if (!ok && werr) snprintf(why, sizeof why, "%s", werr);
        out->bytes = snap_writer_bytes(o.w);
        if (ok) ok = snap_writer_commit(o.w, why, sizeof why);
        else snap_writer_abort(o.w);
    }
    if (ok) ok = read_reply(fd, REPLY_TIMEOUT_MS, "OK", why, sizeof why);
    else if (fd >= 0) read_reply(fd, 500, "OK", why, sizeof why); /* the target may have said why it stopped reading */
    if (fd >= 0) close(fd);
    p2m_dirty_stop(&e->vm->mem);
    free(o.dirty);
    out->total_ns = monitor_now_ns() - t0;
    out->downtime_ns = t_stop ? monitor_now_ns() - t_stop : 0;

    pthread_mutex_lock(&m->lock);
    e->busy = NULL;
    e->cap_percent = cap;
    if (!ok && was_running && e->state == VMS_PAUSED) {
        e->state = VMS_RUNNING; /* it runs on here */
        monitor_make_runnable(m, e);
    }
    pthread_mutex_unlock(&m->lock);
    if (!ok) return monitor_fail(err, errlen, MON_EINVAL, "migration of '%s' failed: %s", name, why);
    monitor_vm_destroy(m, name, why, sizeof why);
    return 0;
}

/* ---- the target ---- */

struct migrate_incoming {
    struct monitor *m;
    int fd;
    pthread_t thread;
    bool stop;   /* atomic */
};

/* Loads the rest of the stream into the VM being built, in stream order:
 * a frame sent in a later round overwrites its earlier copy. */
struct incoming_stream {
    struct snap_stream *st;
    int fd;
};

static bool incoming_fill(struct vm *vm, void *ctx, char *why, size_t whylen) {
    struct incoming_stream *in = ctx;
    struct snap_stream *st = in->st;
    struct vm_loader l;
    vm_loader_init(&l, vm);
    for (;;) {
        struct snap_section s;
        int r = snap_stream_next(st, &s, why, whylen);
        if (r < 0) return false;
        if (r == 0) break;
        if (!strcmp(s.tag, "sync")) { /* all before it is loaded: say so */
            if (send(in->fd, "SYNC\n", 5, MSG_NOSIGNAL) != 5) {
                snprintf(why, whylen, "the source went away");
                return false;
            }
            continue;
        }
        if (!vm_loader_section(&l, &s, why, whylen)) return false;
    }
    if (!vm_loader_finish(&l, why, whylen)) return false;
    vm_snapshot_resume(vm);
    return true;
}

/* "migrate": the VM's name. */
static bool read_name(const struct snap_section *s, char name[VM_NAME_MAX + 1], char *why, size_t whylen) {
    struct snap_cursor c;
    snap_cursor_init(&c, s);
    uint32_t len = 0;
    snap_get_u32(&c, &len);
    if (strcmp(s->tag, "migrate") || s->version != MIGRATE_VERSION || c.bad || len == 0 || len > VM_NAME_MAX ||
        !snap_get_bytes(&c, name, len) || c.left) {
        snprintf(why, whylen, "not an rvisor migration stream (or one of another version)");
        return false;
    }
    name[len] = 0;
    return true;
}

static void take_one(struct monitor *m, int fd) {
    char why[512] = "", name[VM_NAME_MAX + 1] = "";
    struct snap_stream *st = snap_stream_open(fd, MIGRATE_MAX_SECTION, STREAM_TIMEOUT_MS, why, sizeof why);
    struct vm_spec_store spec;
    memset(&spec, 0, sizeof spec);
    struct snap_section s;
    bool ok = st && snap_stream_next(st, &s, why, sizeof why) == 1 && read_name(&s, name, why, sizeof why);
    if (ok && (snap_stream_next(st, &s, why, sizeof why) != 1 || strcmp(s.tag, "spec"))) {
        if (!why[0]) snprintf(why, sizeof why, "the stream does not describe its VM");
        ok = false;
    }
    ok = ok && vm_spec_store_load(&s, &spec, why, sizeof why);
    if (ok) {
        snprintf(spec.spec.name, sizeof spec.spec.name, "%s", name);
        struct incoming_stream in = {st, fd};
        ok = monitor_build_vm(m, &spec.spec, incoming_fill, &in, VMS_RUNNING, why, sizeof why) == 0;
    }
    vm_spec_store_free(&spec);
    snap_stream_close(st);
    char reply[600];
    int n = ok ? snprintf(reply, sizeof reply, "OK\n") : snprintf(reply, sizeof reply, "ERR %s\n", why);
    if (send(fd, reply, (size_t)n, MSG_NOSIGNAL) < 0) { /* the source gave up: it runs the VM on */ }
    fprintf(stderr, "rvisor: incoming migration%s%s: %s\n", name[0] ? " of " : "", name, ok ? "running" : why);
}

static void *incoming_main(void *arg) {
    struct migrate_incoming *in = arg;
    while (!__atomic_load_n(&in->stop, __ATOMIC_ACQUIRE)) {
        struct pollfd p = {in->fd, POLLIN, 0};
        if (poll(&p, 1, 200) != 1) continue;
        int c = accept4(in->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue;
        take_one(in->m, c);
        close(c);
    }
    return NULL;
}

int monitor_listen_incoming(struct monitor *m, const char *uri, char *err, size_t errlen) {
    struct sockaddr_in sa;
    char why[256];
    if (!parse_tcp_uri(uri, &sa, why, sizeof why)) return monitor_fail(err, errlen, MON_EINVAL, "%s", why);
    if (m->incoming) return monitor_fail(err, errlen, MON_EINVAL, "the monitor already listens for migrations");
    struct migrate_incoming *in = calloc(1, sizeof *in);
    if (!in) return monitor_fail(err, errlen, MON_ENOMEM, "out of host memory");
    in->m = m;
    in->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (in->fd < 0 || setsockopt(in->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(in->fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(in->fd, 4) != 0) {
        int e = errno;
        if (in->fd >= 0) close(in->fd);
        free(in);
        return monitor_fail(err, errlen, MON_EINVAL, "cannot listen on %s: %s", uri, strerror(e));
    }
    if (pthread_create(&in->thread, NULL, incoming_main, in) != 0) {
        close(in->fd);
        free(in);
        return monitor_fail(err, errlen, MON_ENOMEM, "cannot start a thread");
    }
    m->incoming = in;
    return 0;
}

void monitor_incoming_stop(struct monitor *m) {
    struct migrate_incoming *in = m->incoming;
    if (!in) return;
    __atomic_store_n(&in->stop, true, __ATOMIC_RELEASE);
    pthread_join(in->thread, NULL);
    close(in->fd);
    free(in);
    m->incoming = NULL;
}
