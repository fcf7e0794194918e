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
    int fd;               /* closed only by the thread that joins this one */
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
};

static bool send_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool send_reply(int fd, char *reply) {
    static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\",\"code\":\"error\"}\n";
    bool ok = reply ? send_all(fd, reply, strlen(reply)) : send_all(fd, oom, sizeof oom - 1);
    free(reply);
    return ok;
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
            if (!send_all(c->fd, out, n)) goto done;
        if (client_eof || atomic_load(&c->s->closing)) break;
        struct vm_info info;
        if (monitor_vm_info(m, name, &info) != 0) break; /* destroyed */
        if (info.state == VMS_STOPPED) {
            while ((n = monitor_console_read(m, name, &pos, out, CONSOLE_CHUNK)) > 0)
                if (!send_all(c->fd, out, n)) goto done;
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

static void serve_connection(struct conn *c) {
    struct api_server *s = c->s;
    char *buf = malloc(LINE_CAP);
    if (!buf) {
        send_reply(c->fd, NULL);
        return;
    }
    size_t len = 0;
    bool discarding = false; /* skipping the rest of an oversized line */
    while (!atomic_load(&s->closing)) {
        ssize_t n = recv(c->fd, buf + len, LINE_CAP - len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        if (n == 0) {
            if (len && !blank(buf, len)) {
                send_reply(c->fd, api_error_reply("incomplete", "connection closed in the middle of a request "
                                                                "(each request must end with a newline)"));
            }
            break;
        }
        size_t scan = len;
        len += (size_t)n;
        if (discarding) {
            char *nl = memchr(buf, '\n', len);
            if (!nl) {
                len = 0;
                continue;
            }
            size_t skip = (size_t)(nl - buf) + 1;
            memmove(buf, buf + skip, len - skip);
            len -= skip;
            discarding = false;
            scan = 0;
        }
        size_t start = 0;
        char *nl;
        while ((nl = memchr(buf + scan, '\n', len - scan)) != NULL) {
            size_t end = (size_t)(nl - buf);
            size_t llen = end - start;
            if (llen && buf[start + llen - 1] == '\r') llen--;
            if (!blank(buf + start, llen)) {
                enum api_after after;
                char name[VM_NAME_MAX + 1];
                char *reply = api_handle_line(s->m, buf + start, llen, &after, name);
                if (!send_reply(c->fd, reply)) goto out;
                if (after == API_AFTER_SHUTDOWN) api_server_stop(s);
                if (after == API_AFTER_CONSOLE) {
                    size_t rest = len - (end + 1);
                    memmove(buf, buf + end + 1, rest);
                    stream_console(c, name, buf, rest);
                    goto out;
                }
            }
            start = end + 1;
            scan = start;
        }
        memmove(buf, buf + start, len - start);
        len -= start;
        if (len == LINE_CAP) {
            if (!send_reply(c->fd, api_error_reply("too_large", "request is larger than %d bytes", API_MAX_REQUEST)))
                break;
            discarding = true;
            len = 0;
        }
    }
out:
    free(buf);
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
    char *r = api_error_reply(code, "%s", msg);
    if (r) {
        ssize_t n = send(fd, r, strlen(r), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    }
    free(r);
    close(fd);
}

static void accept_one(struct api_server *s) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            struct timespec ts = {0, 100 * 1000 * 1000}; /* let connections end */
            nanosleep(&ts, NULL);
        }
        return;
    }
    /* Only the owner's processes (and root) may talk to the monitor; the socket
     * file's mode already says so, this covers a file made accessible later. */
    struct ucred cred;
    socklen_t cl = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.uid != geteuid() && cred.uid != 0) {
        refuse(fd, "bad_request", "permission denied: the monitor serves only its owner");
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
    /* Signals are for the thread that runs the server, not for connections. */
    sigset_t all, old;
    sigfillset(&all);
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
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
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
