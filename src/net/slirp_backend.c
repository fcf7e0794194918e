/* User-mode networking with libslirp: a TCP/IP stack in this process that
 * answers the guest's DHCP, DNS and ARP, and turns its TCP and UDP flows
 * into ordinary host sockets.
 *
 * libslirp is not thread safe (it has process-wide state, its clock among
 * it), so every call into it happens on the event loop's thread: creation
 * and cleanup are handed to the loop and waited for, and its sockets and
 * timers are one event source. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slirp/libslirp.h>

#include "io/event_loop.h"
#include "net/net_backend.h"

#define NET_ADDR "10.0.2.0"
#define NET_MASK "255.255.255.0"
#define HOST_ADDR "10.0.2.2"
#define DNS_ADDR "10.0.2.3"
#define DHCP_START "10.0.2.15"
#define SLIRP_MTU 1500
/* Timer callbacks run per dispatch at most; one re-arming itself for the
 * past must not hold the loop. */
#define MAX_TIMER_RUNS 64

struct stimer {
    struct stimer *next;
    SlirpTimerCb cb;
    void *cb_opaque;
    int64_t expire_ms; /* -1: not armed */
};

struct snet {
    struct event_loop *loop;
    struct event_source *source;
    Slirp *slirp;
    struct net_peer peer;
    bool paused;            /* the card is out of buffers: read no host sockets */
    struct stimer *timers;
    /* The current round's descriptors (the loop's array). */
    struct pollfd *fds;
    unsigned nfds, maxfds;
    /* For creation on the loop thread. */
    const struct slirp_hostfwd *fwd;
    unsigned nfwd;
    char *err;
    size_t errlen;
};

static int64_t now_ms(void) { return (int64_t)(event_loop_now_ns() / 1000000); }

/* ---- callbacks from libslirp ---- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque) {
    struct snet *s = opaque;
    if (!s->peer.deliver(s->peer.ctx, buf, len)) s->paused = true;
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque) {
    /* A guest must not be able to fill the host's logs. */
    (void)msg;
    (void)opaque;
}

static int64_t cb_clock_get_ns(void *opaque) {
    (void)opaque;
    return (int64_t)event_loop_now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque) {
    struct snet *s = opaque;
    struct stimer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    *t = (struct stimer){.next = s->timers, .cb = cb, .cb_opaque = cb_opaque, .expire_ms = -1};
    s->timers = t;
    return t;
}

static void cb_timer_free(void *timer, void *opaque) {
    struct snet *s = opaque;
    for (struct stimer **p = &s->timers; *p; p = &(*p)->next) {
        if (*p == timer) {
            *p = (*p)->next;
            free(timer);
            return;
        }
    }
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque) {
    (void)opaque;
    struct stimer *t = timer;
    if (t) t->expire_ms = expire_ms < 0 ? 0 : expire_ms;
}

/* Descriptors are gathered afresh every round by slirp_pollfds_fill. */
static void cb_register_poll_fd(int fd, void *opaque) {
    (void)fd;
    (void)opaque;
}

static void cb_unregister_poll_fd(int fd, void *opaque) {
    (void)fd;
    (void)opaque;
}

static void cb_notify(void *opaque) {
    struct snet *s = opaque;
    event_loop_wakeup(s->loop);
}

static const SlirpCb slirp_callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
};

/* ---- the event source ---- */

static int add_poll(int fd, int events, void *opaque) {
    struct snet *s = opaque;
    if (s->nfds == s->maxfds) return -1; /* slirp skips it this round */
    short ev = 0;
    /* While the card has no buffers, leave data in the host sockets (TCP
     * then slows the sender down) instead of dropping it. */
    if ((events & SLIRP_POLL_IN) && !s->paused) ev |= POLLIN;
    if ((events & SLIRP_POLL_PRI) && !s->paused) ev |= POLLPRI;
    if (events & SLIRP_POLL_OUT) ev |= POLLOUT;
    s->fds[s->nfds] = (struct pollfd){.fd = fd, .events = ev};
    return (int)s->nfds++;
}

static int get_revents(int idx, void *opaque) {
    struct snet *s = opaque;
    if (idx < 0 || (unsigned)idx >= s->nfds) return 0;
    short re = s->fds[idx].revents;
    int r = 0;
    if (re & POLLIN) r |= SLIRP_POLL_IN;
    if (re & POLLOUT) r |= SLIRP_POLL_OUT;
    if (re & POLLPRI) r |= SLIRP_POLL_PRI;
    if (re & (POLLERR | POLLNVAL)) r |= SLIRP_POLL_ERR;
    if (re & POLLHUP) r |= SLIRP_POLL_HUP;
    return r;
}

static unsigned snet_prepare(void *ctx, struct pollfd *fds, unsigned max, uint64_t *timeout_ns) {
    struct snet *s = ctx;
    uint32_t ms = UINT32_MAX;
    s->fds = fds;
    s->nfds = 0;
    s->maxfds = max;
    slirp_pollfds_fill(s->slirp, &ms, add_poll, s);
    int64_t now = now_ms();
    for (struct stimer *t = s->timers; t; t = t->next) {
        if (t->expire_ms < 0) continue;
        int64_t left = t->expire_ms - now;
        if (left < 0) left = 0;
        if ((uint64_t)left < ms) ms = (uint32_t)left;
    }
    if (ms != UINT32_MAX && (uint64_t)ms * 1000000u < *timeout_ns) *timeout_ns = (uint64_t)ms * 1000000u;
    return s->nfds;
}

static void run_timers(struct snet *s) {
    int64_t now = now_ms();
    for (unsigned runs = 0; runs < MAX_TIMER_RUNS; runs++) {
        struct stimer *t = s->timers;
        while (t && (t->expire_ms < 0 || t->expire_ms > now)) t = t->next;
        if (!t) return;
        t->expire_ms = -1;
        t->cb(t->cb_opaque); /* may free or re-arm any timer */
    }
}

static void snet_dispatch(void *ctx, struct pollfd *fds, unsigned n) {
    struct snet *s = ctx;
    s->fds = fds;
    s->nfds = n;
    slirp_pollfds_poll(s->slirp, 0, get_revents, s);
    run_timers(s);
}

static const struct event_source_ops snet_source_ops = {snet_prepare, snet_dispatch};

/* ---- running a step on the loop thread ---- */

struct loop_call {
    void (*fn)(struct snet *s);
    struct snet *s;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void loop_call_cb(void *ctx) {
    struct loop_call *c = ctx;
    c->fn(c->s);
    pthread_mutex_lock(&c->lock);
    c->done = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* Runs fn(s) on the loop thread and waits for it. The caller is never the
 * loop thread (VMs are made and destroyed by the CLI or API threads). */
static bool on_loop(struct snet *s, void (*fn)(struct snet *s)) {
    struct loop_call c = {.fn = fn, .s = s, .done = false};
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    struct event_notifier *n = event_notifier_create(s->loop, loop_call_cb, &c);
    if (n) {
        event_notifier_signal(n);
        pthread_mutex_lock(&c.lock);
        while (!c.done) pthread_cond_wait(&c.cond, &c.lock);
        pthread_mutex_unlock(&c.lock);
        event_notifier_destroy(n);
    }
    pthread_cond_destroy(&c.cond);
    pthread_mutex_destroy(&c.lock);
    return n != NULL;
}

static struct in_addr addr(const char *dotted) {
    struct in_addr a;
    inet_pton(AF_INET, dotted, &a);
    return a;
}

static void start_on_loop(struct snet *s) {
    SlirpConfig cfg = {
        .version = 1,
        .restricted = 0,
        .in_enabled = true,
        .vnetwork = addr(NET_ADDR),
        .vnetmask = addr(NET_MASK),
        .vhost = addr(HOST_ADDR),
        .in6_enabled = false,
        .vdhcp_start = addr(DHCP_START),
        .vnameserver = addr(DNS_ADDR),
        .if_mtu = SLIRP_MTU,
        .if_mru = SLIRP_MTU,
        .disable_host_loopback = false, /* the guest reaches the host's 127.0.0.1 at 10.0.2.2 */
        .enable_emu = false,
    };
    s->slirp = slirp_new(&cfg, &slirp_callbacks, s);
    if (!s->slirp) {
        snprintf(s->err, s->errlen, "cannot start user-mode networking (libslirp)");
        return;
    }
    for (unsigned i = 0; i < s->nfwd; i++) {
        const struct slirp_hostfwd *f = &s->fwd[i];
        struct in_addr host = {.s_addr = f->host_addr ? f->host_addr : htonl(INADDR_ANY)};
        struct in_addr guest = {.s_addr = f->guest_addr ? f->guest_addr : addr(DHCP_START).s_addr};
        errno = 0;
        if (slirp_add_hostfwd(s->slirp, f->udp, host, f->host_port, guest, f->guest_port) < 0) {
            char h[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &host, h, sizeof h);
            snprintf(s->err, s->errlen, "hostfwd: cannot listen on host %s %s:%u%s%s", f->udp ? "udp" : "tcp", h,
                     f->host_port, errno ? ": " : "", errno ? strerror(errno) : "");
            slirp_cleanup(s->slirp);
            s->slirp = NULL;
            return;
        }
    }
    s->source = event_loop_add(s->loop, &snet_source_ops, s);
    if (!s->source) {
        snprintf(s->err, s->errlen, "out of memory");
        slirp_cleanup(s->slirp);
        s->slirp = NULL;
    }
}

static void stop_on_loop(struct snet *s) {
    if (s->source) event_loop_remove(s->loop, s->source);
    s->source = NULL;
    if (s->slirp) slirp_cleanup(s->slirp);
    s->slirp = NULL;
}

static void free_snet(struct snet *s) {
    while (s->timers) {
        struct stimer *t = s->timers;
        s->timers = t->next;
        free(t);
    }
    free(s);
}

/* ---- the backend ---- */

static void snet_send(void *be, const uint8_t *frame, size_t len) {
    struct snet *s = be;
    if (len > NET_MAX_FRAME) return;
    slirp_input(s->slirp, frame, (int)len);
}

static void snet_resume(void *be) {
    struct snet *s = be;
    s->paused = false;
    event_loop_wakeup(s->loop);
}

static void snet_destroy(void *be) {
    struct snet *s = be;
    on_loop(s, stop_on_loop);
    free_snet(s);
}

static const struct net_backend_ops snet_ops = {snet_send, snet_resume, snet_destroy};

bool slirp_backend_create(struct event_loop *loop, const struct slirp_hostfwd *fwd, unsigned nfwd,
                          struct net_peer peer, struct net_backend *out, char *err, size_t errlen) {
    if (!loop) {
        snprintf(err, errlen, "user-mode networking needs an event loop");
        return false;
    }
    struct snet *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    *s = (struct snet){.loop = loop, .peer = peer, .fwd = fwd, .nfwd = nfwd, .err = err, .errlen = errlen};
    if (!on_loop(s, start_on_loop)) snprintf(err, errlen, "out of memory");
    s->fwd = NULL;
    s->err = NULL;
    if (!s->source) {
        free_snet(s);
        return false;
    }
    *out = (struct net_backend){&snet_ops, s, .rx_checksums_valid = true};
    return true;
}
