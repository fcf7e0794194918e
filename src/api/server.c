#include "api/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/protocol.h"
#include "monitor/monitor.h"

#define LINE_CAP (API_MAX_REQUEST + 1) /* a longest request and its '\n' */
#define CONSOLE_TICK_MS 20
#define CONSOLE_CHUNK 16384

struct conn {
    struct api_server *s;
    int fd;               /* non-blocking; closed only by the thread that joins this one */
    int request_ms;       /* the server's timeouts when this connection came */
    int send_ms;
    pthread_t thread;
    struct conn *next;
};

struct api_server {
    struct monitor *m;
    int listen_fd;
    int wake[2];                  /* api_server_stop() writes here */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;                    /* the socket file we created */
    ino_t ino;
    atomic_bool stop_requested;   /* api_server_run returns */
    atomic_bool closing;          /* every connection ends */
    pthread_mutex_t lock;
    struct conn *conns;           /* running or finished, not yet joined */
    unsigned live;                /* connections whose thread still runs */
    unsigned consoles;            /* of those, streaming a console */
    atomic_int request_ms;        /* API_REQUEST_TIMEOUT_MS unless a test changed it */
    atomic_int send_ms;           /* API_SEND_TIMEOUT_MS likewise */
};

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits up to timeout_ms (-1: without limit) for fd to be ready for events,
 * or to have hung up or failed (the next call then says so). 0 on timeout. */
static int wait_ready(int fd, short events, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = events};
    int r;
    while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {}
    return r;
}

/* Sends all of buf; false if the client is gone or took nothing for
 * timeout_ms (it is then dropped: the socket is non-blocking, so a client
 * that reads nothing costs a wait here and nothing else). */
static bool send_all(struct conn *c, const void *buf, size_t len, int timeout_ms) {
    const char *p = buf;
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_ready(c->fd, POLLOUT, timeout_ms) > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            fprintf(stderr, "rvisor: dropped a control client that took no output for %d ms\n", timeout_ms);
        return false;
    }
    return true;
}

static bool send_reply(struct conn *c, char *reply) {
    static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\",\"code\":\"error\"}\n";
    bool ok = reply ? send_all(c, reply, strlen(reply), c->send_ms) : send_all(c, oom, sizeof oom - 1, c->send_ms);
    free(reply);
    return ok;
}

/* A last word to a client about to be closed: whatever fits in its socket
 * now, without waiting for it. */
static void send_parting(int fd, char *reply) {
    if (reply) {
        ssize_t n = send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    }
    free(reply);
}

/* ---- console streaming ---- */

/* Streams a VM's console both ways until the client closes its side, the VM
 * is destroyed or stopped, or the server closes. in[0..in_len) holds client
 * bytes that followed the request line; in has room for LINE_CAP bytes. */
static void stream_console(struct conn *c, const char *name, char *in, size_t in_len) {
    struct monitor *m = c->s->m;
    uint64_t pos = 0;
    bool client_eof = false;
    char *out = malloc(CONSOLE_CHUNK);
    if (!out) return;
    for (;;) {
        /* Guest output first, so that a client that has already closed its
         * side still gets everything written so far. */
        size_t n;
        while ((n = monitor_console_read(m, name, &pos, out, CONSOLE_CHUNK)) > 0)
            if (!send_all(c, out, n, c->send_ms)) goto done;
        if (client_eof || atomic_load(&c->s->closing)) break;
        struct vm_info info;
        if (monitor_vm_info(m, name, &info) != 0) break; /* destroyed */
        if (info.state == VMS_STOPPED) {
            while ((n = monitor_console_read(m, name, &pos, out, CONSOLE_CHUNK)) > 0)
                if (!send_all(c, out, n, c->send_ms)) goto done;
            break;
        }
        if (in_len) {
            long k = monitor_console_write(m, name, in, in_len);
            if (k < 0) break;
            memmove(in, in + k, in_len - (size_t)k);
            in_len -= (size_t)k;
        }
        /* While the guest has not taken the backlog, read no more from the
         * client: the socket then pushes back on it. */
        struct pollfd p = {.fd = c->fd, .events = in_len < LINE_CAP ? POLLIN : 0};
        int r = poll(&p, 1, CONSOLE_TICK_MS);
        if (r < 0 && errno != EINTR) break;
        if (r > 0 && (p.revents & POLLIN)) {
            ssize_t got = recv(c->fd, in + in_len, LINE_CAP - in_len, MSG_DONTWAIT);
            if (got == 0) {
                client_eof = true;
            } else if (got > 0) {
                in_len += (size_t)got;
                long k = monitor_console_write(m, name, in, in_len);
                if (k < 0) break;
                memmove(in, in + k, in_len - (size_t)k);
                in_len -= (size_t)k;
            } else if (errno != EAGAIN && errno != EINTR) {
                break;
            }
        } else if (r > 0 && (p.revents & (POLLHUP | POLLERR))) {
            client_eof = true;
        }
    }
done:
    free(out);
}

/* ---- requests ---- */

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

/* Console streams are bounded apart from connections, so that viewers
 * cannot take every connection the monitor has and leave none for requests. */
static bool claim_console(struct api_server *s) {
    pthread_mutex_lock(&s->lock);
    bool ok = s->consoles < API_MAX_CONSOLE_CLIENTS;
    if (ok) s->consoles++;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static void release_console(struct api_server *s) {
    pthread_mutex_lock(&s->lock);
    s->consoles--;
    pthread_mutex_unlock(&s->lock);
}

/* What a connection has received and not yet handled. */
struct reader {
    char *buf;         /* LINE_CAP bytes */
    size_t len;
    bool discarding;   /* skipping the rest of an oversized line */
    uint64_t started;  /* ms: when the unfinished request in buf began */
};

static bool mid_request(const struct reader *r) { return r->len || r->discarding; }

/* Waits for more bytes (at most until the unfinished request's time is up)
 * and appends them. >0 bytes read; 0 the client closed its side; -1 the
 * connection ends (failed, or timed out: the client is told). */
static ssize_t read_more(struct conn *c, struct reader *r) {
    int timeout = -1;
    if (mid_request(r)) {
        uint64_t waited = now_ms() - r->started;
        timeout = waited >= (uint64_t)c->request_ms ? 0 : (int)((uint64_t)c->request_ms - waited);
    }
    for (;;) {
        if (wait_ready(c->fd, POLLIN, timeout) == 0) {
            fprintf(stderr, "rvisor: dropped a control client that left a request unfinished for %d ms\n",
                    c->request_ms);
            send_parting(c->fd, api_error_reply("timeout", "the request was not finished (ended by a newline) "
                                                           "within %d ms", c->request_ms));
            return -1;
        }
        ssize_t n = recv(c->fd, r->buf + r->len, LINE_CAP - r->len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (n < 0) return -1;
        if (n > 0 && !mid_request(r)) r->started = now_ms();
        return n;
    }
}

/* Drops the bytes of an oversized line up to its newline; false while
 * none has come. */
static bool skip_discarded(struct reader *r) {
    char *nl = memchr(r->buf, '\n', r->len);
    if (!nl) {
        r->len = 0;
        return false;
    }
    size_t skip = (size_t)(nl - r->buf) + 1;
    memmove(r->buf, r->buf + skip, r->len - skip);
    r->len -= skip;
    r->discarding = false;
    return true;
}

/* Answers the request line r->buf[start, start + len). false if the
 * connection ends: the client is gone, or it became a console stream that
 * has ended (the bytes from r->buf[next] on were its first input). */
static bool answer(struct conn *c, struct reader *r, size_t start, size_t len, size_t next) {
    struct api_server *s = c->s;
    enum api_after after;
    char name[VM_NAME_MAX + 1];
    char *reply = api_handle_line(s->m, r->buf + start, len, &after, name);
    if (after == API_AFTER_CONSOLE && !claim_console(s)) {
        free(reply);
        reply = api_error_reply("busy", "the monitor has too many console clients (%d)", API_MAX_CONSOLE_CLIENTS);
        after = API_AFTER_NONE;
    }
    bool sent = send_reply(c, reply);
    if (after == API_AFTER_SHUTDOWN) api_server_stop(s);
    if (after != API_AFTER_CONSOLE) return sent;
    if (sent) {
        size_t rest = r->len - next;
        memmove(r->buf, r->buf + next, rest);
        stream_console(c, name, r->buf, rest);
    }
    release_console(s);
    return false;
}

static void serve_connection(struct conn *c) {
    struct reader r = {.buf = malloc(LINE_CAP)};
    if (!r.buf) {
        send_reply(c, NULL);
        return;
    }
    while (!atomic_load(&c->s->closing)) {
        size_t scan = r.len;
        ssize_t n = read_more(c, &r);
        if (n < 0) break;
        if (n == 0) {
            if (r.len && !blank(r.buf, r.len))
                send_reply(c, api_error_reply("incomplete", "connection closed in the middle of a request "
                                                            "(each request must end with a newline)"));
            break;
        }
        r.len += (size_t)n;
        if (r.discarding) {
            if (!skip_discarded(&r)) continue;
            scan = 0;
        }
        size_t start = 0;
        char *nl;
        while ((nl = memchr(r.buf + scan, '\n', r.len - scan)) != NULL) {
            size_t end = (size_t)(nl - r.buf);
            size_t llen = end - start;
            if (llen && r.buf[start + llen - 1] == '\r') llen--;
            if (!blank(r.buf + start, llen) && !answer(c, &r, start, llen, end + 1)) goto out;
            start = end + 1;
            scan = start;
        }
        memmove(r.buf, r.buf + start, r.len - start);
        r.len -= start;
        /* What is left began with the newest bytes, at the latest. */
        if (start && r.len) r.started = now_ms();
        if (r.len == LINE_CAP) {
            if (!send_reply(c, api_error_reply("too_large", "request is larger than %d bytes", API_MAX_REQUEST)))
                break;
            r.discarding = true;
            r.len = 0;
        }
    }
out:
    free(r.buf);
}

static void *connection_thread(void *arg) {
    struct conn *c = arg;
    serve_connection(c);
    /* The descriptor stays open until the server joins this thread, so
     * api_server_close can shut it down without racing a reuse of the number. */
    shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_lock(&c->s->lock);
    c->s->live--;
    pthread_mutex_unlock(&c->s->lock);
    return NULL;
}

/* Joins the threads of finished connections. */
static void reap(struct api_server *s, bool all) {
    pthread_mutex_lock(&s->lock);
    struct conn *list = s->conns;
    s->conns = NULL;
    pthread_mutex_unlock(&s->lock);
    struct conn *keep = NULL;
    while (list) {
        struct conn *c = list;
        list = c->next;
        bool finished = all || pthread_tryjoin_np(c->thread, NULL) == 0;
        if (all) pthread_join(c->thread, NULL);
        if (finished) {
            close(c->fd);
            free(c);
        } else {
            c->next = keep;
            keep = c;
        }
    }
    pthread_mutex_lock(&s->lock);
    while (keep) {
        struct conn *c = keep;
        keep = c->next;
        c->next = s->conns;
        s->conns = c;
    }
    pthread_mutex_unlock(&s->lock);
}

static void refuse(int fd, const char *code, const char *msg) {
    send_parting(fd, api_error_reply(code, "%s", msg));
    close(fd);
}

/* Only the monitor's own uid and root may talk to it. The socket file's
 * mode says so too, but a mode can be changed (or a directory's ACL grant
 * more); the peer's credentials, taken by the kernel at connect(2), cannot. */
static bool peer_allowed(const struct api_server *s, int fd) {
    struct ucred cred;
    socklen_t cl = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || cl != sizeof cred) {
        fprintf(stderr, "rvisor: refused a connection to %s: cannot get its credentials: %s\n", s->path,
                strerror(errno));
        return false;
    }
    uid_t owner = geteuid();
    if (cred.uid == owner || cred.uid == 0) return true;
    fprintf(stderr, "rvisor: refused a connection to %s from uid %u (pid %d): only uid %u and root may use the monitor\n",
            s->path, (unsigned)cred.uid, (int)cred.pid, (unsigned)owner);
    return false;
}

static void accept_one(struct api_server *s) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            struct timespec ts = {0, 100 * 1000 * 1000}; /* let connections end */
            nanosleep(&ts, NULL);
        }
        return;
    }
    if (!peer_allowed(s, fd)) {
        refuse(fd, "denied", "permission denied: the monitor serves only its owner and root");
        return;
    }
    reap(s, false);
    pthread_mutex_lock(&s->lock);
    bool full = s->live >= API_MAX_CONNECTIONS;
    pthread_mutex_unlock(&s->lock);
    if (full) {
        refuse(fd, "busy", "the monitor has too many connections");
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        refuse(fd, "error", "out of memory");
        return;
    }
    c->s = s;
    c->fd = fd;
    c->request_ms = atomic_load(&s->request_ms);
    c->send_ms = atomic_load(&s->send_ms);
    /* Signals are for the thread that runs the server, not for connections;
     * but a sandbox's SIGSYS must reach the thread that made the call, or
     * the kernel kills the process without saying which call. */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSYS);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_mutex_lock(&s->lock);
    int rc = pthread_create(&c->thread, NULL, connection_thread, c);
    if (rc == 0) {
        c->next = s->conns;
        s->conns = c;
        s->live++;
    }
    pthread_mutex_unlock(&s->lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        free(c);
        refuse(fd, "busy", "the monitor cannot start a thread for this connection");
    }
}

/* ---- the socket ---- */

static bool fill_addr(struct sockaddr_un *a, const char *path, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (!*path) {
        snprintf(err, errlen, "the socket path is empty");
        return false;
    }
    if (strlen(path) >= sizeof a->sun_path) {
        snprintf(err, errlen, "the socket path is longer than %zu bytes: %s", sizeof a->sun_path - 1, path);
        return false;
    }
    memcpy(a->sun_path, path, strlen(path) + 1);
    return true;
}

/* Removes a socket file no monitor listens on any more. */
static bool clear_stale(const char *path, const struct sockaddr_un *a, char *err, size_t errlen) {
    struct stat st;
    if (lstat(path, &st) != 0) return true;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket; not replacing it", path);
        return false;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return false;
    }
    int rc = connect(fd, (const struct sockaddr *)a, sizeof *a);
    int e = errno;
    close(fd);
    if (rc == 0) {
        snprintf(err, errlen, "a monitor is already serving at %s", path);
        return false;
    }
    if (e != ECONNREFUSED) {
        snprintf(err, errlen, "cannot check the existing socket %s: %s", path, strerror(e));
        return false;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove the stale socket %s: %s", path, strerror(errno));
        return false;
    }
    return true;
}

struct api_server *api_server_open(struct monitor *m, const char *path, char *err, size_t errlen) {
    struct sockaddr_un a;
    if (!fill_addr(&a, path, err, errlen)) return NULL;
    if (!clear_stale(path, &a, err, errlen)) return NULL;
    struct api_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->m = m;
    s->wake[0] = s->wake[1] = -1;
    snprintf(s->path, sizeof s->path, "%s", path);
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->request_ms, API_REQUEST_TIMEOUT_MS);
    atomic_init(&s->send_ms, API_SEND_TIMEOUT_MS);
    /* Non-blocking: a client that goes away between poll(2) and accept(2)
     * must not leave the server waiting in accept. */
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->listen_fd < 0 || pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "cannot create the socket: %s", strerror(errno));
        goto fail;
    }
    /* Owner-only from the moment it exists. */
    mode_t old = umask(077);
    int rc = bind(s->listen_fd, (const struct sockaddr *)&a, sizeof a);
    int e = errno;
    umask(old);
    if (rc != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", path, strerror(e));
        goto fail;
    }
    struct stat st;
    if (chmod(path, 0600) != 0 || lstat(path, &st) != 0) {
        snprintf(err, errlen, "cannot set the mode of %s: %s", s->path, strerror(errno));
        unlink(path);
        goto fail;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    if (listen(s->listen_fd, 64) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", s->path, strerror(errno));
        unlink(path);
        goto fail;
    }
    return s;
fail:
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->wake[0] >= 0) close(s->wake[0]);
    if (s->wake[1] >= 0) close(s->wake[1]);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return NULL;
}

void api_server_set_timeouts(struct api_server *s, int request_ms, int send_ms) {
    atomic_store(&s->request_ms, request_ms);
    atomic_store(&s->send_ms, send_ms);
}

void api_server_stop(struct api_server *s) {
    atomic_store(&s->stop_requested, true);
    ssize_t n = write(s->wake[1], "x", 1);
    (void)n; /* a full pipe already wakes the loop */
}

int api_server_run(struct api_server *s, int stop_fd, char *err, size_t errlen) {
    while (!atomic_load(&s->stop_requested)) {
        struct pollfd p[3] = {
            {.fd = s->listen_fd, .events = POLLIN},
            {.fd = s->wake[0], .events = POLLIN},
            {.fd = stop_fd, .events = POLLIN},
        };
        int r = poll(p, stop_fd >= 0 ? 3 : 2, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return -1;
        }
        if (stop_fd >= 0 && p[2].revents) return 0;
        if (p[1].revents) {
            char b[64];
            while (read(s->wake[0], b, sizeof b) > 0) {}
        }
        if (atomic_load(&s->stop_requested)) break;
        if (p[0].revents & (POLLERR | POLLNVAL)) {
            snprintf(err, errlen, "the listening socket failed");
            return -1;
        }
        if (p[0].revents & POLLIN) accept_one(s);
    }
    return 0;
}

void api_server_close(struct api_server *s) {
    if (!s) return;
    atomic_store(&s->closing, true);
    close(s->listen_fd);
    struct stat st;
    if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino) unlink(s->path);
    pthread_mutex_lock(&s->lock);
    for (struct conn *c = s->conns; c; c = c->next) shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->lock);
    reap(s, true);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int api_serve(struct monitor *m, const char *path, int stop_fd, char *err, size_t errlen) {
    struct api_server *s = api_server_open(m, path, err, errlen);
    if (!s) return -1;
    int rc = api_server_run(s, stop_fd, err, errlen);
    api_server_close(s);
    return rc;
}
