/* The monitor's event loop: one host thread that waits on file descriptors
 * and timers with poll(2) and runs device work when they fire, so disk and
 * network I/O happen off the vCPU threads. One loop serves every VM of a
 * monitor (or the one VM of `rvisor run`).
 *
 * Work is organised as sources. A source's prepare callback fills in the
 * descriptors it wants polled and may shorten the wait; its dispatch
 * callback gets the same descriptors back with revents set (and is also
 * called when the wait it asked for ran out). This shape fits both a plain
 * descriptor (a TAP device, an eventfd a device is kicked through) and a
 * library that wants to be polled, like libslirp.
 *
 * Thread safety: sources may be added and removed from any thread. Both
 * callbacks run on the loop thread with the loop's lock held; once
 * event_loop_remove returns, neither runs again for that source. Callbacks
 * may remove sources (their own included). The lock is held across
 * dispatch, so never call event_loop_remove while holding a lock a
 * dispatch callback takes. */
#ifndef RVISOR_EVENT_LOOP_H
#define RVISOR_EVENT_LOOP_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_loop;
struct event_source;

/* Descriptors one source may have polled per round (libslirp: one per
 * guest connection). */
#define EVENT_SOURCE_MAX_FDS 4096

struct event_source_ops {
    /* Fills up to max entries of fds (fd and events); returns how many. May
     * lower *timeout_ns (relative, nanoseconds) to be called back sooner. */
    unsigned (*prepare)(void *ctx, struct pollfd *fds, unsigned max, uint64_t *timeout_ns);
    /* fds/n are what prepare filled, with revents set (all 0 on a timeout). */
    void (*dispatch)(void *ctx, struct pollfd *fds, unsigned n);
};

/* Starts the loop's thread. NULL with a message in err on failure. */
struct event_loop *event_loop_create(char *err, size_t errlen);
/* Stops the thread; every source must have been removed. */
void event_loop_destroy(struct event_loop *l);

struct event_source *event_loop_add(struct event_loop *l, const struct event_source_ops *ops, void *ctx);
void event_loop_remove(struct event_loop *l, struct event_source *s);
/* Makes the loop call prepare again soon (a source's wishes changed). */
void event_loop_wakeup(struct event_loop *l);

/* Keeps every dispatch callback from running until event_loop_release
 * (the loop thread is then at most polling), so that device state can be
 * read or written consistently: a snapshot. Never call it from a callback
 * nor while holding a lock a callback takes. NULL l: nothing to hold. */
void event_loop_hold(struct event_loop *l);
void event_loop_release(struct event_loop *l);

/* Convenience: a single descriptor. cb runs on the loop thread when fd has
 * any of events (POLLIN, POLLOUT) or an error. */
struct event_source *event_loop_add_fd(struct event_loop *l, int fd, short events,
                                       void (*cb)(void *ctx, short revents), void *ctx);

/* A notifier is an eventfd a vCPU thread signals cheaply (a queue notify)
 * and the loop thread answers by calling cb. Signals coalesce. Without a
 * loop (l == NULL, as in unit tests) event_notifier_signal calls cb at
 * once on the signalling thread. */
struct event_notifier;
struct event_notifier *event_notifier_create(struct event_loop *l, void (*cb)(void *ctx), void *ctx);
void event_notifier_signal(struct event_notifier *n);
void event_notifier_destroy(struct event_notifier *n);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t event_loop_now_ns(void);

#endif
