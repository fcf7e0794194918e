/* A TAP device as a network backend: each read(2) of the descriptor is one
 * frame the host sent towards the guest, each write(2) one frame from it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "io/event_loop.h"
#include "net/net_backend.h"

/* Frames taken per wakeup, so one busy card does not hold up the loop. */
#define TAP_BATCH 64

struct tap {
    struct event_loop *loop;
    struct event_source *source;
    int fd;
    struct net_peer peer;
    bool paused; /* the card is out of buffers: leave frames in the kernel */
    bool failed; /* the descriptor broke (interface deleted...): stop polling it */
    uint8_t buf[NET_MAX_FRAME];
};

static unsigned tap_prepare(void *ctx, struct pollfd *fds, unsigned max, uint64_t *timeout_ns) {
    (void)timeout_ns;
    struct tap *t = ctx;
    if (!max || t->paused || t->failed) return 0;
    fds[0] = (struct pollfd){.fd = t->fd, .events = POLLIN};
    return 1;
}

static void tap_dispatch(void *ctx, struct pollfd *fds, unsigned n) {
    struct tap *t = ctx;
    if (!n || !fds[0].revents) return;
    for (unsigned i = 0; i < TAP_BATCH && !t->paused; i++) {
        ssize_t r = read(t->fd, t->buf, sizeof t->buf);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) break;
        if (r <= 0) {
            /* It would keep polling as ready: give up on it rather than spin. */
            fprintf(stderr, "rvisor: TAP device: %s; the card is disconnected\n",
                    r < 0 ? strerror(errno) : "end of file");
            t->failed = true;
            break;
        }
        if (!t->peer.deliver(t->peer.ctx, t->buf, (size_t)r)) t->paused = true;
    }
}

static const struct event_source_ops tap_source_ops = {tap_prepare, tap_dispatch};

static void tap_send(void *be, const uint8_t *frame, size_t len) {
    struct tap *t = be;
    ssize_t r;
    do {
        r = write(t->fd, frame, len);
    } while (r < 0 && errno == EINTR);
    /* Anything else (queue full, interface down) loses the frame, as a
     * wire would. */
}

static void tap_resume(void *be) {
    struct tap *t = be;
    t->paused = false;
    event_loop_wakeup(t->loop);
}

static void tap_destroy(void *be) {
    struct tap *t = be;
    if (t->source) event_loop_remove(t->loop, t->source);
    close(t->fd);
    free(t);
}

static const struct net_backend_ops tap_ops = {tap_send, tap_resume, tap_destroy};

static void open_error(const char *ifname, int e, char *err, size_t errlen) {
    if (e == EPERM || e == EACCES)
        snprintf(err, errlen,
                 "no permission to use TAP device '%s' (creating one needs CAP_NET_ADMIN; or create it "
                 "beforehand with: ip tuntap add dev %s mode tap user $USER)",
                 ifname, ifname);
    else if (e == EBUSY)
        snprintf(err, errlen, "TAP device '%s' is in use by another process", ifname);
    else if (e == EINVAL)
        snprintf(err, errlen, "'%s' exists and is not a TAP device", ifname);
    else
        snprintf(err, errlen, "cannot attach TAP device '%s': %s", ifname, strerror(e));
}

bool tap_backend_create(struct event_loop *loop, const char *ifname, struct net_peer peer,
                        struct net_backend *out, char *err, size_t errlen) {
    if (!loop) {
        snprintf(err, errlen, "TAP networking needs an event loop");
        return false;
    }
    size_t len = strlen(ifname);
    if (len == 0 || len >= IFNAMSIZ) {
        snprintf(err, errlen, "bad TAP interface name '%s' (1 to %d characters)", ifname, IFNAMSIZ - 1);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (ifname[i] == '/' || ifname[i] == ':' || ifname[i] <= ' ' || ifname[i] == 0x7f) {
            snprintf(err, errlen, "bad TAP interface name '%s'", ifname);
            return false;
        }
    }
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENODEV || e == ENXIO)
            snprintf(err, errlen, "no /dev/net/tun on this host (is the tun module loaded?)");
        else
            open_error(ifname, e, err, errlen);
        return false;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    memcpy(ifr.ifr_name, ifname, len);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        open_error(ifname, errno, err, errlen);
        close(fd);
        return false;
    }
    struct tap *t = calloc(1, sizeof *t);
    if (!t) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    t->loop = loop;
    t->fd = fd;
    t->peer = peer;
    t->source = event_loop_add(loop, &tap_source_ops, t);
    if (!t->source) {
        close(fd);
        free(t);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    /* Frames from the host (or a bridge) are checked by the guest itself. */
    *out = (struct net_backend){&tap_ops, t, .rx_checksums_valid = false};
    return true;
}
