#include "cli/client.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/options.h"
#include "cli/reply_fields.h"
#include "vm/platform.h"

#define CTRL_A 0x01
#define MAX_REPLY (64u << 20)

struct client {
    int fd;
    const char *path;
    char *buf;          /* bytes received and not yet consumed */
    size_t len, cap;
};

void client_default_socket(char *buf, size_t len) {
    const char *dir = getenv("XDG_RUNTIME_DIR");
    if (dir && *dir)
        snprintf(buf, len, "%s/rvisor.sock", dir);
    else
        snprintf(buf, len, "/tmp/rvisor-%u.sock", (unsigned)getuid());
}

/* ---- the connection ---- */

static bool client_connect(struct client *c, const char *path) {
    memset(c, 0, sizeof *c);
    c->path = path;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) {
        fprintf(stderr, "rvisor: cannot connect to the monitor at %s: the path is too long\n", path);
        return false;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        fprintf(stderr, "rvisor: cannot connect to the monitor at %s: %s%s\n", path, strerror(e),
                e == ENOENT || e == ECONNREFUSED ? " (is `rvisor serve` running?)" : "");
        if (c->fd >= 0) close(c->fd);
        c->fd = -1;
        return false;
    }
    return true;
}

static void client_close(struct client *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

static bool write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Sends one request and reads its reply line. Returns the parsed reply, or
 * NULL after printing why. Bytes after the reply line stay in c->buf. */
static json_object *roundtrip(struct client *c, json_object *req) {
    const char *s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t n = strlen(s);
    char *line = malloc(n + 1);
    if (!line) return NULL;
    memcpy(line, s, n);
    line[n] = '\n';
    int e = 0;
    for (size_t done = 0; done < n + 1 && !e;) {
        ssize_t k = send(c->fd, line + done, n + 1 - done, MSG_NOSIGNAL);
        if (k > 0)
            done += (size_t)k;
        else if (k < 0 && errno != EINTR)
            e = errno;
    }
    free(line);
    if (e) {
        fprintf(stderr, "rvisor: cannot send to the monitor at %s: %s\n", c->path, strerror(e));
        return NULL;
    }
    char *nl;
    while (!c->buf || !(nl = memchr(c->buf, '\n', c->len))) {
        if (c->len == c->cap) {
            if (c->cap >= MAX_REPLY) {
                fprintf(stderr, "rvisor: the monitor's reply is too long\n");
                return NULL;
            }
            size_t cap = c->cap ? c->cap * 2 : 4096;
            char *b = realloc(c->buf, cap);
            if (!b) return NULL;
            c->buf = b;
            c->cap = cap;
        }
        ssize_t got = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            fprintf(stderr, "rvisor: the monitor at %s closed the connection without replying\n", c->path);
            return NULL;
        }
        c->len += (size_t)got;
    }
    size_t llen = (size_t)(nl - c->buf);
    json_tokener *tok = json_tokener_new();
    json_object *reply = tok ? json_tokener_parse_ex(tok, c->buf, (int)llen) : NULL;
    bool good = tok && json_tokener_get_error(tok) == json_tokener_success &&
                json_object_is_type(reply, json_type_object);
    if (tok) json_tokener_free(tok);
    memmove(c->buf, nl + 1, c->len - llen - 1);
    c->len -= llen + 1;
    if (!good) {
        json_object_put(reply);
        fprintf(stderr, "rvisor: the monitor sent a reply that is not a JSON object\n");
        return NULL;
    }
    return reply;
}

static bool reply_ok(json_object *reply) {
    json_object *v;
    return json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v);
}

/* Connects, sends req (taking it), returns the reply if it is ok; otherwise
 * prints the error and returns NULL. */
static json_object *call(const char *path, json_object *req) {
    struct client c;
    if (!client_connect(&c, path)) {
        json_object_put(req);
        return NULL;
    }
    json_object *reply = roundtrip(&c, req);
    json_object_put(req);
    client_close(&c);
    if (reply && !reply_ok(reply)) {
        fprintf(stderr, "rvisor: %s\n", field_str(reply, "error"));
        json_object_put(reply);
        return NULL;
    }
    return reply;
}

static json_object *op_request(const char *op, const char *name) {
    json_object *req = json_object_new_object();
    json_object_object_add(req, "op", json_object_new_string(op));
    if (name) json_object_object_add(req, "name", json_object_new_string(name));
    return req;
}

json_object *client_request(const char *socket_path, const char *op, const char *name) {
    return call(socket_path, op_request(op, name));
}

static void print_json(json_object *o) {
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* ---- human-readable output ---- */

static void fmt_bytes(char *out, size_t len, uint64_t b) {
    static const char units[] = "KMGT";
    if (b < 1024) {
        snprintf(out, len, "%lluB", (unsigned long long)b);
        return;
    }
    double v = (double)b;
    int u = -1;
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    if (v >= 100 || v == (double)(uint64_t)v)
        snprintf(out, len, "%.0f%c", v, units[u]);
    else
        snprintf(out, len, "%.1f%c", v, units[u]);
}

static void fmt_seconds(char *out, size_t len, uint64_t ns) {
    snprintf(out, len, "%.2fs", (double)ns / 1e9);
}

/* The balloon and the guest's own memory figures. */
static void print_balloon(json_object *r) {
    json_object *b;
    if (!json_object_object_get_ex(r, "balloon", &b) || !json_object_is_type(b, json_type_object)) {
        printf("balloon:       none\n");
        return;
    }
    char target[32], actual[32], size[32], freed[32], reported[32];
    fmt_bytes(target, sizeof target, field_u64(b, "target"));
    fmt_bytes(actual, sizeof actual, field_u64(b, "actual"));
    fmt_bytes(size, sizeof size, field_u64(b, "size"));
    fmt_bytes(freed, sizeof freed, field_u64(b, "freed"));
    fmt_bytes(reported, sizeof reported, field_u64(b, "reported"));
    printf("balloon:       guest keeps %s of target %s (the balloon holds %s)\n", actual, target, size);
    printf("released:      %s by inflating, %s by free page reporting\n", freed, reported);
    json_object *s;
    if (!json_object_object_get_ex(b, "stats", &s) || !json_object_is_type(s, json_type_object)) {
        printf("guest memory:  no figures from the guest yet\n");
        return;
    }
    static const struct {
        const char *key, *label;
        bool bytes;
    } f[] = {
        {"total", "total", true},        {"free", "free", true},
        {"available", "available", true}, {"caches", "caches", true},
        {"major_faults", "major faults", false}, {"minor_faults", "minor faults", false},
        {"swap_in", "swapped in", true}, {"swap_out", "swapped out", true},
    };
    char line[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        if (!field_has(s, f[i].key)) continue;
        char v[32];
        if (f[i].bytes)
            fmt_bytes(v, sizeof v, field_u64(s, f[i].key));
        else
            snprintf(v, sizeof v, "%llu", (unsigned long long)field_u64(s, f[i].key));
        int n = snprintf(line + len, sizeof line - len, "%s%s %s", len ? ", " : "", f[i].label, v);
        if (n > 0 && (size_t)n < sizeof line - len) len += (size_t)n;
    }
    printf("guest memory:  %s (%.1fs ago)\n", len ? line : "-", (double)field_u64(s, "age_ms") / 1000);
}

/* The engine, and the translator's counters when it runs the VM. */
static void print_engine(json_object *r) {
    printf("engine:        %s\n", *field_str(r, "engine") ? field_str(r, "engine") : "-");
    json_object *j;
    if (!json_object_object_get_ex(r, "jit", &j) || !json_object_is_type(j, json_type_object)) return;
    char code[32];
    fmt_bytes(code, sizeof code, field_u64(j, "code_bytes"));
    uint64_t insns = field_u64(r, "instructions"), disp = field_u64(j, "dispatches");
    printf("translated:    %llu blocks, %llu guest instructions, %s of code now, %llu flushes\n",
           (unsigned long long)field_u64(j, "translated_blocks"),
           (unsigned long long)field_u64(j, "translated_instructions"), code,
           (unsigned long long)field_u64(j, "flushes"));
    printf("translating:   %.1f ms of host time\n", (double)field_u64(j, "translate_ns") / 1e6);
    if (insns)
        printf("dispatches:    %llu (%.0f per million instructions)\n", (unsigned long long)disp,
               (double)disp * 1e6 / (double)insns);
    else
        printf("dispatches:    %llu\n", (unsigned long long)disp);
    uint64_t jumps = field_u64(j, "jumps"), misses = field_u64(j, "jump_cache_misses");
    printf("jump cache:    %llu jumps, %.1f%% hits\n", (unsigned long long)jumps,
           jumps ? 100.0 * (double)(jumps - misses) / (double)jumps : 0.0);
    printf("fused pairs:   %llu\n", (unsigned long long)field_u64(j, "fused_pairs"));
}

static void print_stats(json_object *r) {
    char mem[32], backed[32], cpu[32];
    fmt_bytes(mem, sizeof mem, field_u64(r, "mem_size"));
    fmt_bytes(backed, sizeof backed, field_u64(r, "mem_backed"));
    fmt_seconds(cpu, sizeof cpu, field_u64(r, "cpu_ns"));
    printf("name:          %s\n", field_str(r, "name"));
    printf("state:         %s\n", field_str(r, "state"));
    printf("cpus:          %llu\n", (unsigned long long)field_u64(r, "cpus"));
    printf("shares:        %llu\n", (unsigned long long)field_u64(r, "shares"));
    uint64_t cap = field_u64(r, "cap_percent");
    if (cap)
        printf("cap:           %llu%% of a host core\n", (unsigned long long)cap);
    else
        printf("cap:           none\n");
    printf("memory:        %s (%llu bytes)\n", mem, (unsigned long long)field_u64(r, "mem_size"));
    printf("backed:        %s (%llu bytes of machine memory)\n", backed, (unsigned long long)field_u64(r, "mem_backed"));
    json_object *pg;
    if (json_object_object_get_ex(r, "pages", &pg) && pg)
        printf("pages:         %llu own, %llu shared, %llu zero; %llu zero pages given back, "
               "%llu copy-on-write breaks\n",
               (unsigned long long)field_u64(pg, "backed"), (unsigned long long)field_u64(pg, "shared"),
               (unsigned long long)field_u64(pg, "zero"), (unsigned long long)field_u64(pg, "zero_merged"),
               (unsigned long long)field_u64(pg, "cow_breaks"));
    if (pg && (field_u64(pg, "swapped") || field_u64(pg, "swap_outs")))
        printf("swap:          %llu pages in its swap file; %llu written out, %llu read back in total; "
               "device copies waited for memory %llu times\n",
               (unsigned long long)field_u64(pg, "swapped"), (unsigned long long)field_u64(pg, "swap_outs"),
               (unsigned long long)field_u64(pg, "swap_ins"), (unsigned long long)field_u64(pg, "dma_waits"));
    const char *group = field_str(r, "share_group");
    printf("share group:   %s\n", *group ? group : "(its own)");
    printf("generation ID: %s\n", field_str(r, "generation_id"));
    json_object *al;
    if (json_object_object_get_ex(r, "alloc", &al) && al) {
        char min[32], target[32], bal[32], active[32];
        fmt_bytes(min, sizeof min, field_u64(al, "min"));
        fmt_bytes(target, sizeof target, field_u64(al, "target"));
        fmt_bytes(bal, sizeof bal, field_u64(al, "balloon"));
        int64_t act = field_i64(al, "active_percent");
        if (act < 0) snprintf(active, sizeof active, "not sampled yet");
        else snprintf(active, sizeof active, "%lld%%", (long long)act);
        printf("allocation:    %llu memory shares, %s guaranteed, %s active; target %s, policy balloon %s\n",
               (unsigned long long)field_u64(al, "shares"), min, active, target, bal);
    }
    printf("cpu time:      %s\n", cpu);
    printf("instructions:  %llu\n", (unsigned long long)field_u64(r, "instructions"));
    print_engine(r);
    if (strcmp(field_str(r, "state"), "stopped") == 0) {
        const char *msg = field_str(r, "exit_message");
        printf("exit status:   %lld%s%s\n", (long long)field_i64(r, "exit_status"), *msg ? " — " : "", msg);
    }
    print_balloon(r);
}

static void print_swap(json_object *r) {
    json_object *sw;
    if (!json_object_object_get_ex(r, "swap", &sw) || !sw) return;
    if (!json_object_get_boolean(json_object_object_get(sw, "enabled"))) {
        printf("swap:           off (guests stop when machine memory runs out)\n");
        return;
    }
    char swapped[32];
    fmt_bytes(swapped, sizeof swapped, field_u64(sw, "swapped") << 12);
    printf("reclamation:    %s; swap holds %s (%llu pages); %llu written out, %llu read back, %llu cancelled by "
           "writes, %llu errors; %llu harts waiting for memory; %.1f ms of CPU\n",
           field_str(sw, "state"), swapped, (unsigned long long)field_u64(sw, "swapped"),
           (unsigned long long)field_u64(sw, "swap_outs"), (unsigned long long)field_u64(sw, "swap_ins"),
           (unsigned long long)field_u64(sw, "cancelled"), (unsigned long long)field_u64(sw, "errors"),
           (unsigned long long)field_u64(sw, "waiting"), (double)field_u64(sw, "cpu_ns") / 1e6);
    printf("low state:      %s VMs above their targets (%llu times so far)\n",
           field_bool(sw, "holding") ? "holding" : "not holding", (unsigned long long)field_u64(sw, "low_holds"));
}

static void print_memory(json_object *r) {
    char total[32], used[32], saved[32];
    fmt_bytes(total, sizeof total, field_u64(r, "total"));
    fmt_bytes(used, sizeof used, field_u64(r, "used"));
    printf("machine memory: %s used of %s\n", used, total);
    print_swap(r);
    json_object *sh;
    if (!json_object_object_get_ex(r, "sharing", &sh) || !sh) return;
    if (!json_object_get_boolean(json_object_object_get(sh, "enabled"))) {
        printf("page sharing:   off\n");
        return;
    }
    fmt_bytes(saved, sizeof saved, field_u64(sh, "saved_bytes"));
    printf("page sharing:   %llu shared frames mapped by %llu guest pages (%s saved), %llu zero pages given back\n",
           (unsigned long long)field_u64(sh, "shared_frames"), (unsigned long long)field_u64(sh, "sharing_pages"), saved,
           (unsigned long long)field_u64(sh, "zero_merged"));
    printf("scanner:        %llu frames hashed (at most %llu/s), %llu merged, %llu cancelled by writes, "
           "%llu hash matches differed, %.1f ms of CPU\n",
           (unsigned long long)field_u64(sh, "scanned"), (unsigned long long)field_u64(sh, "rate"),
           (unsigned long long)field_u64(sh, "merged"), (unsigned long long)field_u64(sh, "cancelled"),
           (unsigned long long)field_u64(sh, "different"), (double)field_u64(sh, "scan_cpu_ns") / 1e6);
    printf("copy-on-write:  %llu breaks\n", (unsigned long long)field_u64(sh, "cow_breaks"));
}

static void print_table(json_object *r) {
    json_object *vms;
    if (!json_object_object_get_ex(r, "vms", &vms) || !json_object_is_type(vms, json_type_array)) return;
    size_t n = json_object_array_length(vms);
    int w = 4;
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(field_str(json_object_array_get_idx(vms, i), "name"));
        if (l > w) w = l;
    }
    printf("%-*s  %-8s %4s %7s %7s %9s %6s %4s  %s\n", w, "NAME", "STATE", "CPUS", "MEM", "BACKED", "CPU TIME",
           "SHARES", "CAP", "ENGINE");
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(vms, i);
        char mem[32], backed[32], cpu[32], cap[32];
        fmt_bytes(mem, sizeof mem, field_u64(v, "mem_size"));
        fmt_bytes(backed, sizeof backed, field_u64(v, "mem_backed"));
        fmt_seconds(cpu, sizeof cpu, field_u64(v, "cpu_ns"));
        uint64_t c = field_u64(v, "cap_percent");
        if (c)
            snprintf(cap, sizeof cap, "%llu%%", (unsigned long long)c);
        else
            snprintf(cap, sizeof cap, "-");
        printf("%-*s  %-8s %4llu %7s %7s %9s %6llu %4s  %s\n", w, field_str(v, "name"), field_str(v, "state"),
               (unsigned long long)field_u64(v, "cpus"), mem, backed, cpu,
               (unsigned long long)field_u64(v, "shares"), cap, *field_str(v, "engine") ? field_str(v, "engine") : "-");
    }
}

/* ---- the console ---- */

struct term {
    bool raw;
    struct termios saved;
};

static void term_raw(struct term *t) {
    t->raw = false;
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
        struct termios raw = t->saved;
        cfmakeraw(&raw);
        raw.c_oflag |= OPOST | ONLCR; /* keep rvisor's own messages readable */
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) t->raw = true;
    }
}

static void term_restore(struct term *t) {
    if (t->raw) tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
    t->raw = false;
}

static void say(const char *msg) {
    if (!write_all(STDERR_FILENO, msg, strlen(msg))) { /* nothing to do */ }
}

enum console_end { END_SERVER, END_DETACH, END_SIGNAL, END_ERROR };

static enum console_end console_loop(struct client *c, const char *name, struct term *t, int sig_fd) {
    char out[4096];       /* to the monitor */
    size_t out_len = 0;
    bool in_eof = false, escape = false, sent_eof = false;
    char buf[16384];
    for (;;) {
        if (in_eof && out_len == 0 && !sent_eof) {
            shutdown(c->fd, SHUT_WR); /* the monitor then sends what is left and closes */
            sent_eof = true;
        }
        struct pollfd p[3] = {
            {.fd = c->fd, .events = POLLIN | (out_len ? POLLOUT : 0)},
            {.fd = sig_fd, .events = POLLIN},
            {.fd = STDIN_FILENO, .events = POLLIN},
        };
        /* Read the terminal only while there is room for what it gives. */
        nfds_t np = (!in_eof && out_len < sizeof out / 2) ? 3 : 2;
        if (poll(p, np, -1) < 0) {
            if (errno == EINTR) continue;
            return END_ERROR;
        }
        if (p[1].revents & POLLIN) return END_SIGNAL;
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0) return END_SERVER;
            if (n > 0) {
                if (!write_all(STDOUT_FILENO, buf, (size_t)n)) return END_ERROR;
            } else if (errno != EAGAIN && errno != EINTR) {
                return END_SERVER;
            }
        }
        if (out_len && (p[0].revents & POLLOUT)) {
            ssize_t n = send(c->fd, out, out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                memmove(out, out + n, out_len - (size_t)n);
                out_len -= (size_t)n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                return END_SERVER;
            }
        }
        if (np == 3 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            char in[sizeof out / 2];
            ssize_t n = read(STDIN_FILENO, in, sizeof in);
            if (n <= 0) {
                if (n < 0 && errno == EINTR) continue;
                in_eof = true;
                continue;
            }
            for (ssize_t i = 0; i < n; i++) {
                unsigned char b = (unsigned char)in[i];
                if (!t->raw) {
                    out[out_len++] = (char)b;
                    continue;
                }
                if (!escape) {
                    if (b == CTRL_A)
                        escape = true;
                    else
                        out[out_len++] = (char)b;
                    continue;
                }
                escape = false;
                if (b == 'x' || b == 'X') return END_DETACH;
                if (b == 'h' || b == 'H' || b == '?') {
                    say("\r\nC-a h    this help\r\nC-a x    detach (the VM keeps running)\r\n"
                        "C-a C-a  send C-a to the guest\r\n");
                } else if (b == CTRL_A) {
                    out[out_len++] = (char)b;
                }
            }
            if (out_len) { /* try at once; POLLOUT covers the rest */
                ssize_t k = send(c->fd, out, out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k > 0) {
                    memmove(out, out + k, out_len - (size_t)k);
                    out_len -= (size_t)k;
                }
            }
        }
    }
    (void)name;
}

static int console_cmd(const char *path, const char *name) {
    struct client c;
    if (!client_connect(&c, path)) return 1;
    json_object *req = op_request("console", name);
    json_object *reply = roundtrip(&c, req);
    json_object_put(req);
    if (!reply) {
        client_close(&c);
        return 1;
    }
    if (!reply_ok(reply)) {
        fprintf(stderr, "rvisor: %s\n", field_str(reply, "error"));
        json_object_put(reply);
        client_close(&c);
        return 1;
    }
    json_object_put(reply);

    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, &old);
    int sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigaction(SIGPIPE, &ign, &old_pipe);

    struct term t;
    term_raw(&t);
    if (t.raw) {
        char msg[160];
        snprintf(msg, sizeof msg, "rvisor: attached to %s (Ctrl-A x detaches, Ctrl-A h helps)\r\n", name);
        say(msg);
    }
    if (c.len && !write_all(STDOUT_FILENO, c.buf, c.len)) { /* output gone */ }
    c.len = 0;
    enum console_end end = console_loop(&c, name, &t, sig_fd);
    bool was_raw = t.raw;
    term_restore(&t);
    client_close(&c);
    if (sig_fd >= 0) close(sig_fd);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);

    switch (end) {
    case END_DETACH:
        fprintf(stderr, "\nrvisor: detached from %s (it keeps running)\n", name);
        return 0;
    case END_SIGNAL:
        if (was_raw) fprintf(stderr, "\n");
        fprintf(stderr, "rvisor: detached from %s by a signal\n", name);
        return 0;
    case END_ERROR:
        fprintf(stderr, "\nrvisor: console of %s: %s\n", name, strerror(errno));
        return 1;
    case END_SERVER: break;
    }
    if (!was_raw) return 0; /* scripted use: the output is the result */
    /* Say why the monitor ended the stream. */
    struct client q;
    if (!client_connect(&q, path)) return 1;
    req = op_request("stats", name);
    reply = roundtrip(&q, req);
    json_object_put(req);
    client_close(&q);
    if (!reply) return 1;
    if (!reply_ok(reply)) {
        fprintf(stderr, "\nrvisor: %s no longer exists\n", name);
    } else if (strcmp(field_str(reply, "state"), "stopped") == 0) {
        const char *msg = field_str(reply, "exit_message");
        fprintf(stderr, "\nrvisor: %s stopped%s%s\n", name, *msg ? ": " : "", msg);
    } else {
        fprintf(stderr, "\nrvisor: the monitor closed the console of %s\n", name);
    }
    json_object_put(reply);
    return 0;
}

/* ---- commands ---- */

static void usage(FILE *f, const char *cmd) {
    if (strcmp(cmd, "create") == 0) {
        fprintf(f, "Usage: rvisor create NAME --kernel FILE [OPTIONS]\n"
                   "Create a VM in the running monitor (it starts with `rvisor start NAME`).\n"
                   "\n"
                   "  --kernel FILE    Linux kernel Image\n"
                   "  --initrd FILE    initial ramdisk\n"
                   "  --append STRING  kernel command line (default: \"console=ttyS0\")\n"
                   "  --mem SIZE       guest RAM: MiB, or with suffix K, M or G (default 256M)\n"
                   "  --cpus N         harts (default 1)\n"
                   "  --shares N       proportional CPU share, 1 to 100000 (default 1000)\n"
                   "  --cap PCT        at most PCT%% of a host core (default 0: no cap)\n"
                   "  --bios FILE      M-mode firmware or bare-metal program\n"
                   "  --drive SPEC     a virtio-blk disk, as for rvisor run (repeatable)\n"
                   "  --net SPEC       a virtio-net card, as for rvisor run (repeatable)\n"
                   "  --console uart|virtio  ttyS0 (default) or hvc0\n"
                   "  --no-balloon     leave out the virtio-balloon device\n"
                   "  --engine jit|interp  the binary translator (default on x86-64 hosts) or\n"
                   "                   the interpreter\n"
                   "  --jit-cache SIZE translated-code buffer per hart, 1M to 4G (default 32M)\n"
                   "  --mem-shares N   memory shares: when machine memory is short, VMs keep memory\n"
                   "                   in proportion to these, idle memory taxed (default 10 per MiB)\n"
                   "  --mem-min SIZE   memory it is guaranteed: never ballooned or swapped below\n"
                   "  --share-group NAME  page sharing may merge this VM's memory with that of\n"
                   "                   VMs of the same group (default: a group of its own; see\n"
                   "                   README.md, Security of page sharing)\n"
                   "  --socket PATH    the monitor's control socket\n"
                   "  --json           print the monitor's reply as JSON\n");
        return;
    }
    if (strcmp(cmd, "memory") == 0) {
        fprintf(f, "Usage: rvisor memory [--socket PATH] [--json]\n"
                   "Show the monitor's machine memory and page sharing.\n");
        return;
    }
    if (strcmp(cmd, "ls") == 0 || strcmp(cmd, "list") == 0 || strcmp(cmd, "shutdown") == 0) {
        bool down = strcmp(cmd, "shutdown") == 0;
        fprintf(f, "Usage: rvisor %s [--socket PATH] [--json]\n%s\n", down ? "shutdown" : "ls",
                down ? "Stop every VM and the monitor." : "List the monitor's VMs.");
        return;
    }
    if (strcmp(cmd, "console") == 0) {
        fprintf(f, "Usage: rvisor console NAME [--socket PATH]\n"
                   "Attach this terminal to a VM's console, from the oldest output the monitor kept.\n"
                   "Ctrl-A x detaches (the VM keeps running), Ctrl-A h helps, Ctrl-A Ctrl-A sends Ctrl-A.\n"
                   "Without a terminal on stdin, bytes pass through unchanged and the end of\n"
                   "input ends the command once the output so far has been printed.\n");
        return;
    }
    if (strcmp(cmd, "balloon") == 0) {
        fprintf(f, "Usage: rvisor balloon NAME SIZE [--socket PATH] [--json]\n"
                   "Set the VM's memory balloon so that the guest keeps SIZE of its RAM (MiB, or\n"
                   "with suffix K, M or G), as QEMU's `balloon` command: `rvisor balloon vm1 128M`\n"
                   "takes a 256M guest down to 128M, and the machine memory it gives up returns\n"
                   "to the monitor; SIZE equal to its RAM gives everything back. The guest's\n"
                   "driver gets there in its own time: `rvisor stats NAME` shows where it is.\n");
        return;
    }
    if (strcmp(cmd, "snapshot") == 0) {
        fprintf(f, "Usage: rvisor snapshot NAME FILE [--stop] [--direct] [--socket PATH] [--json]\n"
                   "Save the VM's state (harts, devices, the memory it wrote) into FILE. The VM is\n"
                   "paused only while its state is read, then runs on (--stop leaves it paused).\n"
                   "FILE appears complete or not at all: an older FILE stays intact until then.\n"
                   "--direct writes the memory around the host's page cache (O_DIRECT, where the\n"
                   "file system allows): a big snapshot neither fills nor evicts the cache, and a\n"
                   "restore then reads FILE from the disk.\n"
                   "`rvisor restore FILE --name NEW` brings it back, as many times as wanted.\n");
        return;
    }
    if (strcmp(cmd, "migrate") == 0) {
        fprintf(f, "Usage: rvisor migrate NAME tcp:HOST:PORT [--downtime MS] [--socket PATH] [--json]\n"
                   "Move the VM, running, to the monitor started with `rvisor serve --incoming\n"
                   "tcp:ADDR:PORT` on HOST (an IPv4 address or localhost): its memory is sent while\n"
                   "it runs, then what it rewrote, until the rest fits in --downtime MS (default\n"
                   "300); then it stops here and starts there. If anything fails it runs on here.\n");
        return;
    }
    if (strcmp(cmd, "restore") == 0) {
        fprintf(f, "Usage: rvisor restore FILE --name NAME [--paused] [--socket PATH] [--json]\n"
                   "Create VM NAME from a snapshot made by `rvisor snapshot`: it runs on from the\n"
                   "saved moment with the saved memory, harts and devices (--paused: it waits for\n"
                   "`rvisor resume`). Disks are reopened from their paths and must have the saved\n"
                   "sizes; a user-mode network starts afresh, so open connections may reset.\n");
        return;
    }
    fprintf(f, "Usage: rvisor %s NAME [--socket PATH] [--json]\n", cmd);
}

static const char *const vm_commands[] = {"start", "pause", "resume", "stop", "destroy", "stats"};

bool client_is_command(const char *name) {
    static const char *const others[] = {"create", "ls",     "list",     "console", "shutdown",
                                         "balloon", "memory", "snapshot", "restore", "migrate"};
    for (size_t i = 0; i < sizeof vm_commands / sizeof *vm_commands; i++)
        if (strcmp(name, vm_commands[i]) == 0) return true;
    for (size_t i = 0; i < sizeof others / sizeof *others; i++)
        if (strcmp(name, others[i]) == 0) return true;
    return false;
}

static bool parse_uint(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (errno || end == s || *end || n < lo || n > hi) {
        fprintf(stderr, "rvisor: --%s must be a number from %ld to %ld, not '%s'\n", opt, lo, hi, s);
        return false;
    }
    *out = n;
    return true;
}

/* Adds the absolute form of a file path to the request. */
static bool add_path(json_object *req, const char *key, const char *path) {
    if (!path) return true;
    char *abs = realpath(path, NULL);
    if (!abs) {
        fprintf(stderr, "rvisor: --%s '%s': %s\n", key, path, strerror(errno));
        return false;
    }
    json_object_object_add(req, key, json_object_new_string(abs));
    free(abs);
    return true;
}

/* The absolute form of a path that need not exist yet (its directory must). */
static char *absolute_new_path(const char *path) {
    char *copy = strdup(path), *slash = copy ? strrchr(copy, '/') : NULL;
    if (!copy) return NULL;
    const char *base = slash ? slash + 1 : copy;
    char *dir = slash ? realpath(slash == copy ? "/" : (*slash = 0, copy), NULL) : realpath(".", NULL);
    char *out = NULL;
    if (!*base) errno = EISDIR;
    else if (dir && asprintf(&out, "%s/%s", strcmp(dir, "/") ? dir : "", base) < 0) out = NULL;
    free(dir);
    free(copy);
    return out;
}

/* What a snapshot or restore did. */
static void print_snapshot(json_object *reply, const char *name, bool snapshot) {
    json_object *s;
    json_object_object_get_ex(reply, "snapshot", &s);
    char size[32];
    fmt_bytes(size, sizeof size, field_u64(s, "bytes"));
    double ms = (double)field_u64(s, "total_ns") / 1e6;
    if (snapshot)
        printf("%s: saved to %s (%s, %llu frames, %llu more as copies of shared ones%s) in %.1f ms, paused %.1f ms; "
               "now %s\n",
               name, field_str(s, "file"), size, (unsigned long long)field_u64(s, "frames"),
               (unsigned long long)field_u64(s, "aliased"), field_bool(s, "direct") ? ", O_DIRECT" : "", ms,
               (double)field_u64(s, "pause_ns") / 1e6, field_str(reply, "state"));
    else
        printf("%s: restored from %s (%s) in %.1f ms; %s\n", name, field_str(s, "file"), size, ms,
               field_str(reply, "state"));
}

/* A --drive spec with its file= path made absolute: the monitor opens it,
 * from its own working directory. */
static json_object *drive_spec(const char *spec) {
    const char *f = strstr(spec, "file=");
    if (!f || (f != spec && f[-1] != ',') || f[5] == '/') return json_object_new_string(spec);
    const char *path = f + 5, *end = strchr(path, ',');
    size_t plen = end ? (size_t)(end - path) : strlen(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return json_object_new_string(spec);
    size_t need = strlen(spec) + strlen(cwd) + 2;
    char *out = malloc(need);
    if (!out) return json_object_new_string(spec);
    snprintf(out, need, "%.*s%s/%.*s%s", (int)(path - spec), spec, cwd, (int)plen, path, end ? end : "");
    json_object *j = json_object_new_string(out);
    free(out);
    return j;
}

int client_command(int argc, char **argv) {
    const char *cmd = argv[0];
    enum { OPT_SOCKET = 256, OPT_JSON, OPT_KERNEL, OPT_INITRD, OPT_APPEND, OPT_MEM, OPT_CPUS, OPT_SHARES, OPT_CAP,
           OPT_BIOS, OPT_DRIVE, OPT_NET, OPT_CONSOLE, OPT_NO_BALLOON, OPT_ENGINE, OPT_JIT_CACHE,
           OPT_SHARE_GROUP, OPT_MEM_SHARES, OPT_MEM_MIN, OPT_STOP, OPT_DIRECT, OPT_PAUSED, OPT_NAME, OPT_DOWNTIME };
    static const struct option longopts[] = {
        {"socket", required_argument, 0, OPT_SOCKET}, {"json", no_argument, 0, OPT_JSON},
        {"kernel", required_argument, 0, OPT_KERNEL}, {"initrd", required_argument, 0, OPT_INITRD},
        {"append", required_argument, 0, OPT_APPEND}, {"mem", required_argument, 0, OPT_MEM},
        {"cpus", required_argument, 0, OPT_CPUS},     {"shares", required_argument, 0, OPT_SHARES},
        {"cap", required_argument, 0, OPT_CAP},       {"bios", required_argument, 0, OPT_BIOS},
        {"drive", required_argument, 0, OPT_DRIVE},   {"net", required_argument, 0, OPT_NET},
        {"console", required_argument, 0, OPT_CONSOLE}, {"no-balloon", no_argument, 0, OPT_NO_BALLOON},
        {"engine", required_argument, 0, OPT_ENGINE}, {"jit-cache", required_argument, 0, OPT_JIT_CACHE},
        {"share-group", required_argument, 0, OPT_SHARE_GROUP},
        {"mem-shares", required_argument, 0, OPT_MEM_SHARES}, {"mem-min", required_argument, 0, OPT_MEM_MIN},
        {"stop", no_argument, 0, OPT_STOP},           {"paused", no_argument, 0, OPT_PAUSED},
        {"direct", no_argument, 0, OPT_DIRECT},
        {"name", required_argument, 0, OPT_NAME},     {"downtime", required_argument, 0, OPT_DOWNTIME},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0},
    };
    bool create = strcmp(cmd, "create") == 0;
    bool list = strcmp(cmd, "ls") == 0 || strcmp(cmd, "list") == 0;
    bool shutdown_cmd = strcmp(cmd, "shutdown") == 0;
    bool memory = strcmp(cmd, "memory") == 0;
    bool console = strcmp(cmd, "console") == 0;
    bool balloon = strcmp(cmd, "balloon") == 0;
    bool snapshot = strcmp(cmd, "snapshot") == 0, restore = strcmp(cmd, "restore") == 0;
    bool migrate = strcmp(cmd, "migrate") == 0;
    bool stop = false, paused = false, direct = false;
    const char *downtime = NULL;
    const char *new_name = NULL;
    const char *socket_path = NULL, *kernel = NULL, *initrd = NULL, *append = NULL, *mem = NULL, *bios = NULL;
    const char *cpus = NULL, *shares = NULL, *cap = NULL, *console_kind = NULL, *engine = NULL, *jit_cache = NULL;
    const char *share_group = NULL, *mem_shares = NULL, *mem_min = NULL;
    const char *drives[VM_MAX_DRIVES + 1], *nets[VM_MAX_NETS + 1]; /* one extra: the monitor says "too many" */
    unsigned ndrives = 0, nnets = 0;
    bool json = false, no_balloon = false;
    getopt_restart();
    opterr = 0;
    int ch, idx = -1;
    while ((ch = getopt_long(argc, argv, ":h", longopts, &idx)) != -1) {
        switch (ch) {
        case OPT_SOCKET: socket_path = optarg; continue;
        case OPT_JSON:
            if (console) break;
            json = true;
            continue;
        case 'h': usage(stdout, cmd); return 0;
        case ':': fprintf(stderr, "rvisor: option '%s' needs a value\n", argv[optind - 1]); return 1;
        case '?': break;
        case OPT_STOP:
            if (!snapshot) break;
            stop = true;
            continue;
        case OPT_DIRECT:
            if (!snapshot) break;
            direct = true;
            continue;
        case OPT_PAUSED:
            if (!restore) break;
            paused = true;
            continue;
        case OPT_NAME:
            if (!restore) break;
            new_name = optarg;
            continue;
        case OPT_DOWNTIME:
            if (!migrate) break;
            downtime = optarg;
            continue;
        default:
            if (!create) break;
            switch (ch) {
            case OPT_KERNEL: kernel = optarg; continue;
            case OPT_INITRD: initrd = optarg; continue;
            case OPT_APPEND: append = optarg; continue;
            case OPT_MEM: mem = optarg; continue;
            case OPT_CPUS: cpus = optarg; continue;
            case OPT_SHARES: shares = optarg; continue;
            case OPT_CAP: cap = optarg; continue;
            case OPT_BIOS: bios = optarg; continue;
            case OPT_DRIVE:
                if (ndrives <= VM_MAX_DRIVES) drives[ndrives++] = optarg;
                continue;
            case OPT_NET:
                if (nnets <= VM_MAX_NETS) nets[nnets++] = optarg;
                continue;
            case OPT_CONSOLE: console_kind = optarg; continue;
            case OPT_NO_BALLOON: no_balloon = true; continue;
            case OPT_ENGINE: engine = optarg; continue;
            case OPT_JIT_CACHE: jit_cache = optarg; continue;
            case OPT_SHARE_GROUP: share_group = optarg; continue;
            case OPT_MEM_SHARES: mem_shares = optarg; continue;
            case OPT_MEM_MIN: mem_min = optarg; continue;
            }
        }
        if (ch == '?')
            fprintf(stderr, "rvisor: unknown option '%s' (see rvisor %s --help)\n", argv[optind - 1], cmd);
        else
            fprintf(stderr, "rvisor: %s does not take --%s (see rvisor %s --help)\n", cmd, longopts[idx].name, cmd);
        return 1;
    }
    int want_args = list || shutdown_cmd || memory ? 0 : balloon || snapshot || migrate ? 2 : 1;
    if (argc - optind != want_args) {
        if (argc - optind < 1 && restore)
            fprintf(stderr, "rvisor: restore needs the snapshot file\n");
        else if (argc - optind < 1 && want_args)
            fprintf(stderr, "rvisor: %s needs the name of a VM\n", cmd);
        else if (argc - optind < want_args && snapshot)
            fprintf(stderr, "rvisor: snapshot needs the file to write\n");
        else if (argc - optind < want_args && migrate)
            fprintf(stderr, "rvisor: migrate needs where to: tcp:HOST:PORT\n");
        else if (argc - optind < want_args)
            fprintf(stderr, "rvisor: %s needs the memory size the guest is to keep (e.g. 128M)\n", cmd);
        else
            fprintf(stderr, "rvisor: unexpected argument '%s'\n", argv[optind + want_args]);
        usage(stderr, cmd);
        return 1;
    }
    const char *name = want_args ? argv[optind] : NULL;
    if (restore) {
        if (!new_name) {
            fprintf(stderr, "rvisor: restore needs --name NAME for the new VM\n");
            usage(stderr, cmd);
            return 1;
        }
        name = new_name;
    }
    char default_path[PATH_MAX];
    if (!socket_path) {
        client_default_socket(default_path, sizeof default_path);
        socket_path = default_path;
    }
    if (console) return console_cmd(socket_path, name);

    json_object *req;
    if (create) {
        req = op_request("create", name);
        long n;
        bool ok = add_path(req, "kernel", kernel) && add_path(req, "initrd", initrd) && add_path(req, "bios", bios);
        if (ok && append) json_object_object_add(req, "append", json_object_new_string(append));
        if (ok && mem) json_object_object_add(req, "mem", json_object_new_string(mem));
        if (ok && cpus && (ok = parse_uint("cpus", cpus, 1, 1024, &n)))
            json_object_object_add(req, "cpus", json_object_new_int64(n));
        if (ok && shares && (ok = parse_uint("shares", shares, 1, 100000, &n)))
            json_object_object_add(req, "shares", json_object_new_int64(n));
        if (ok && cap && (ok = parse_uint("cap", cap, 0, 100000, &n)))
            json_object_object_add(req, "cap", json_object_new_int64(n));
        if (ok && ndrives) {
            json_object *a = json_object_new_array();
            for (unsigned i = 0; i < ndrives; i++) json_object_array_add(a, drive_spec(drives[i]));
            json_object_object_add(req, "drives", a);
        }
        if (ok && nnets) {
            json_object *a = json_object_new_array();
            for (unsigned i = 0; i < nnets; i++) json_object_array_add(a, json_object_new_string(nets[i]));
            json_object_object_add(req, "nets", a);
        }
        if (ok && console_kind) json_object_object_add(req, "console", json_object_new_string(console_kind));
        if (ok && no_balloon) json_object_object_add(req, "balloon", json_object_new_boolean(0));
        if (ok && engine) json_object_object_add(req, "engine", json_object_new_string(engine));
        if (ok && jit_cache) json_object_object_add(req, "jit_cache", json_object_new_string(jit_cache));
        if (ok && share_group) json_object_object_add(req, "share_group", json_object_new_string(share_group));
        if (ok && mem_shares && (ok = parse_uint("mem-shares", mem_shares, 1, 1000000000, &n)))
            json_object_object_add(req, "mem_shares", json_object_new_int64(n));
        if (ok && mem_min) json_object_object_add(req, "mem_min", json_object_new_string(mem_min));
        if (ok && !kernel && !bios) {
            fprintf(stderr, "rvisor: nothing to run: give --kernel (or --bios); see rvisor create --help\n");
            ok = false;
        }
        if (!ok) {
            json_object_put(req);
            return 1;
        }
    } else if (list) {
        req = op_request("list", NULL);
    } else if (shutdown_cmd) {
        req = op_request("shutdown", NULL);
    } else if (memory) {
        req = op_request("memory", NULL);
    } else if (snapshot || restore) {
        const char *file = argv[optind + (snapshot ? 1 : 0)];
        char *abs = snapshot ? absolute_new_path(file) : realpath(file, NULL);
        if (!abs) {
            fprintf(stderr, "rvisor: %s: %s\n", file, strerror(errno));
            return 1;
        }
        req = op_request(cmd, name);
        json_object_object_add(req, "file", json_object_new_string(abs));
        free(abs);
        if (stop) json_object_object_add(req, "stop", json_object_new_boolean(1));
        if (direct) json_object_object_add(req, "direct", json_object_new_boolean(1));
        if (paused) json_object_object_add(req, "paused", json_object_new_boolean(1));
    } else if (migrate) {
        long ms = 0;
        if (downtime && !parse_uint("downtime", downtime, 1, 60000, &ms)) return 1;
        req = op_request("migrate", name);
        json_object_object_add(req, "uri", json_object_new_string(argv[optind + 1]));
        if (ms) json_object_object_add(req, "downtime_ms", json_object_new_int64(ms));
    } else if (balloon) {
        uint64_t bytes;
        if (!parse_size(argv[optind + 1], &bytes)) {
            fprintf(stderr, "rvisor: '%s' is not a size (examples: 128, 128M, 1G)\n", argv[optind + 1]);
            return 1;
        }
        req = op_request("balloon", name);
        json_object_object_add(req, "target", json_object_new_uint64(bytes));
    } else {
        req = op_request(cmd, name);
    }
    json_object *reply = call(socket_path, req);
    if (!reply) return 1;
    if (json) {
        print_json(reply);
    } else if (list) {
        print_table(reply);
    } else if (strcmp(cmd, "stats") == 0) {
        print_stats(reply);
    } else if (memory) {
        print_memory(reply);
    } else if (balloon) {
        json_object *b;
        char target[32], actual[32];
        json_object_object_get_ex(reply, "balloon", &b);
        fmt_bytes(target, sizeof target, field_u64(b, "target"));
        fmt_bytes(actual, sizeof actual, field_u64(b, "actual"));
        printf("%s: balloon target %s (the guest keeps %s now)\n", name, target, actual);
    } else if (snapshot || restore) {
        print_snapshot(reply, name, snapshot);
    } else if (migrate) {
        json_object *mo;
        json_object_object_get_ex(reply, "migration", &mo);
        char size[32];
        fmt_bytes(size, sizeof size, field_u64(mo, "bytes"));
        printf("%s: migrated to %s in %.1f ms (downtime %.1f ms, %s in %llu rounds%s)\n", name, field_str(mo, "uri"),
               (double)field_u64(mo, "total_ns") / 1e6, (double)field_u64(mo, "downtime_ns") / 1e6, size,
               (unsigned long long)field_u64(mo, "rounds"), field_bool(mo, "throttled") ? ", CPU throttled" : "");
    } else if (shutdown_cmd) {
        printf("the monitor at %s is shutting down\n", socket_path);
    } else if (strcmp(cmd, "destroy") == 0) {
        printf("%s: destroyed\n", name);
    } else {
        const char *state = field_str(reply, "state");
        const char *msg = field_str(reply, "exit_message");
        if (strcmp(state, "stopped") == 0 && *msg)
            printf("%s: %s (%s)\n", name, state, msg);
        else
            printf("%s: %s\n", name, *state ? state : "done");
    }
    json_object_put(reply);
    return 0;
}
