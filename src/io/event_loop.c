/* The monitor's event loop (see event_loop.h). */
#include "io/event_loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_WAIT_NS 1000000000ull /* prepare is called at least this often */

struct event_source {
    struct event_source *next;
    const struct event_source_ops *ops;
    void *ctx;
    bool dead;            /* removed; freed once the loop stops looking at it */
    void *owned;          /* freed with the source (event_loop_add_fd's record) */
    unsigned first, n;    /* its slice of the pollfd array this round */
};

struct event_loop {
    pthread_mutex_t lock; /* recursive: callbacks may add and remove sources */
    pthread_t thread;
    int wake_fd;          /* eventfd: the set of sources or their wishes changed */
    bool stopping;
    bool dispatching;     /* dead sources stay linked until the round ends */
    struct event_source *sources;
    struct pollfd *fds;   /* grows so that every source has EVENT_SOURCE_MAX_FDS of room */
    unsigned cap;
};

uint64_t event_loop_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void event_loop_wakeup(struct event_loop *l) {
    uint64_t one = 1;
    ssize_t r = write(l->wake_fd, &one, sizeof one);
    (void)r; /* a full counter already means "wake up" */
}

static void drain(int fd) {
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
}

static void free_dead(struct event_loop *l) {
    for (struct event_source **p = &l->sources; *p;) {
        struct event_source *s = *p;
        if (s->dead) {
            *p = s->next;
            free(s->owned);
            free(s);
        } else {
            p = &s->next;
        }
    }
}

/* One round: ask every source what to wait for, wait, hand out results. */
static void run_once(struct event_loop *l) {
    uint64_t timeout = MAX_WAIT_NS;
    unsigned n = 1;
    l->fds[0] = (struct pollfd){.fd = l->wake_fd, .events = POLLIN};
    for (struct event_source *s = l->sources; s; s = s->next) {
        if (l->cap - n < EVENT_SOURCE_MAX_FDS) {
            struct pollfd *more = realloc(l->fds, (n + EVENT_SOURCE_MAX_FDS) * sizeof *more);
            if (more) {
                l->fds = more;
                l->cap = n + EVENT_SOURCE_MAX_FDS;
            }
        }
        unsigned room = l->cap - n < EVENT_SOURCE_MAX_FDS ? l->cap - n : EVENT_SOURCE_MAX_FDS;
        s->first = n;
        s->n = s->ops->prepare ? s->ops->prepare(s->ctx, &l->fds[n], room, &timeout) : 0;
        if (s->n > room) s->n = room;
        n += s->n;
    }
    pthread_mutex_unlock(&l->lock);

    int ms = (int)((timeout + 999999) / 1000000);
    int r = poll(l->fds, n, ms);
    if (r < 0 && errno != EINTR) r = 0;

    pthread_mutex_lock(&l->lock);
    if (l->fds[0].revents) drain(l->wake_fd);
    l->dispatching = true;
    for (struct event_source *s = l->sources; s; s = s->next) {
        /* Sources added while we polled have nothing of theirs in fds. */
        if (s->dead || s->first == 0) continue;
        if (s->ops->dispatch) s->ops->dispatch(s->ctx, &l->fds[s->first], s->n);
    }
    l->dispatching = false;
    free_dead(l);
}

static void *loop_main(void *arg) {
    struct event_loop *l = arg;
    pthread_mutex_lock(&l->lock);
    while (!l->stopping) run_once(l);
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

struct event_loop *event_loop_create(char *err, size_t errlen) {
    struct event_loop *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->cap = 1 + EVENT_SOURCE_MAX_FDS;
    l->fds = calloc(l->cap, sizeof *l->fds);
    l->wake_fd = l->fds ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
    if (l->wake_fd < 0) {
        snprintf(err, errlen, "%s%s", l->fds ? "eventfd: " : "", l->fds ? strerror(errno) : "out of memory");
        free(l->fds);
        free(l);
        return NULL;
    }
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&l->lock, &a);
    pthread_mutexattr_destroy(&a);
    int rc = pthread_create(&l->thread, NULL, loop_main, l);
    if (rc) {
        snprintf(err, errlen, "cannot start the event loop thread: %s", strerror(rc));
        close(l->wake_fd);
        pthread_mutex_destroy(&l->lock);
        free(l->fds);
        free(l);
        return NULL;
    }
    return l;
}

void event_loop_destroy(struct event_loop *l) {
    if (!l) return;
    pthread_mutex_lock(&l->lock);
    l->stopping = true;
    pthread_mutex_unlock(&l->lock);
    event_loop_wakeup(l);
    pthread_join(l->thread, NULL);
    free_dead(l);
    close(l->wake_fd);
    pthread_mutex_destroy(&l->lock);
    free(l->fds);
    free(l);
}

static struct event_source *add(struct event_loop *l, const struct event_source_ops *ops, void *ctx, void *owned) {
    struct event_source *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->ops = ops;
    s->ctx = ctx;
    s->owned = owned;
    pthread_mutex_lock(&l->lock);
    s->next = l->sources;
    l->sources = s;
    pthread_mutex_unlock(&l->lock);
    event_loop_wakeup(l);
    return s;
}

struct event_source *event_loop_add(struct event_loop *l, const struct event_source_ops *ops, void *ctx) {
    return add(l, ops, ctx, NULL);
}

void event_loop_remove(struct event_loop *l, struct event_source *s) {
    if (!s) return;
    /* Holding the lock means the loop thread is polling or we are it. */
    pthread_mutex_lock(&l->lock);
    s->dead = true;
    if (!l->dispatching) free_dead(l);
    pthread_mutex_unlock(&l->lock);
    event_loop_wakeup(l);
}

void event_loop_hold(struct event_loop *l) {
    if (l) pthread_mutex_lock(&l->lock);
}

void event_loop_release(struct event_loop *l) {
    if (l) pthread_mutex_unlock(&l->lock);
}

/* ---- single descriptors ---- */

struct fd_source {
    int fd;
    short events;
    void (*cb)(void *ctx, short revents);
    void *ctx;
};

static unsigned fd_prepare(void *ctx, struct pollfd *fds, unsigned max, uint64_t *timeout_ns) {
    (void)timeout_ns;
    struct fd_source *f = ctx;
    if (!max) return 0;
    fds[0] = (struct pollfd){.fd = f->fd, .events = f->events};
    return 1;
}

static void fd_dispatch(void *ctx, struct pollfd *fds, unsigned n) {
    struct fd_source *f = ctx;
    if (n && fds[0].revents) f->cb(f->ctx, fds[0].revents);
}

static const struct event_source_ops fd_ops = {fd_prepare, fd_dispatch};

struct event_source *event_loop_add_fd(struct event_loop *l, int fd, short events,
                                       void (*cb)(void *ctx, short revents), void *ctx) {
    struct fd_source *f = malloc(sizeof *f);
    if (!f) return NULL;
    *f = (struct fd_source){fd, events, cb, ctx};
    struct event_source *s = add(l, &fd_ops, f, f);
    if (!s) free(f);
    return s;
}

/* ---- notifiers ---- */

struct event_notifier {
    struct event_loop *loop;
    struct event_source *source;
    int fd;
    void (*cb)(void *ctx);
    void *ctx;
};

static void notifier_fired(void *ctx, short revents) {
    (void)revents;
    struct event_notifier *n = ctx;
    drain(n->fd);
    n->cb(n->ctx);
}

struct event_notifier *event_notifier_create(struct event_loop *l, void (*cb)(void *ctx), void *ctx) {
    struct event_notifier *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    *n = (struct event_notifier){.loop = l, .fd = -1, .cb = cb, .ctx = ctx};
    if (!l) return n;
    n->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (n->fd >= 0) n->source = event_loop_add_fd(l, n->fd, POLLIN, notifier_fired, n);
    if (!n->source) {
        if (n->fd >= 0) close(n->fd);
        free(n);
        return NULL;
    }
    return n;
}

void event_notifier_signal(struct event_notifier *n) {
    if (!n->loop) {
        n->cb(n->ctx);
        return;
    }
    uint64_t one = 1;
    ssize_t r = write(n->fd, &one, sizeof one);
    (void)r;
}

void event_notifier_destroy(struct event_notifier *n) {
    if (!n) return;
    if (n->source) event_loop_remove(n->loop, n->source);
    if (n->fd >= 0) close(n->fd);
    free(n);
}
