/* The control API over a real Unix socket, served by api/server.c in a thread,
 * with a fake monitor behind it (fake_monitor.c); and the CLI client commands
 * against that server. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "api/protocol.h"
#include "api/server.h"
#include "cli/client.h"
#include "fake_monitor.h"

#define TIMEOUT_MS 5000

struct fixture {
    char dir[64];
    char path[128];
    char kernel[128];
    struct monitor *m;
    struct api_server *s;
    pthread_t thread;
    volatile int finished; /* api_server_run returned */
    int rc;
};

static void *run_server(void *arg) {
    struct fixture *f = arg;
    char err[256];
    f->rc = api_server_run(f->s, -1, err, sizeof err);
    __atomic_store_n(&f->finished, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int setup_with(void **state, uint64_t machine_mem, unsigned max_vms) {
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rvisor-api-test-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/ctl.sock", f->dir);
    snprintf(f->kernel, sizeof f->kernel, "%s/Image", f->dir);
    FILE *k = fopen(f->kernel, "w");
    if (!k) return -1;
    fputs("not really a kernel", k);
    fclose(k);
    struct monitor_config cfg = {.machine_mem = machine_mem, .max_vms = max_vms};
    char err[256];
    f->m = monitor_create(&cfg, err, sizeof err);
    f->s = api_server_open(f->m, f->path, err, sizeof err);
    if (!f->s) {
        fprintf(stderr, "api_server_open: %s\n", err);
        return -1;
    }
    pthread_create(&f->thread, NULL, run_server, f);
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_with(state, 1ull << 30, 0); }
static int setup_small(void **state) { return setup_with(state, 3 * FAKE_VM_FOOTPRINT, 0); }
static int setup_few_vms(void **state) { return setup_with(state, 1ull << 30, 3); }

static int teardown(void **state) {
    struct fixture *f = *state;
    api_server_stop(f->s);
    pthread_join(f->thread, NULL);
    api_server_close(f->s);
    monitor_destroy(f->m);
    unlink(f->kernel);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- a minimal client ---- */

static void unix_addr(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    assert_true(strlen(path) < sizeof a->sun_path);
    memcpy(a->sun_path, path, strlen(path) + 1);
}

static int connect_to(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a;
    unix_addr(&a, path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int conn(struct fixture *f) {
    int fd = connect_to(f->path);
    assert_true(fd >= 0);
    return fd;
}

static void send_str(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        assert_true(k > 0);
        s += k;
        n -= (size_t)k;
    }
}

static void send_cstr(int fd, const char *s) { send_str(fd, s, strlen(s)); }

/* Reads one byte with a timeout; -1 at EOF, -2 on timeout. */
static int read_byte(int fd, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0) return -2;
    unsigned char c;
    ssize_t n = recv(fd, &c, 1, 0);
    return n == 1 ? c : -1;
}

/* Reads one reply line and parses it. */
static json_object *read_reply(int fd) {
    char *line = malloc(1 << 20);
    size_t n = 0;
    for (;;) {
        int c = read_byte(fd, TIMEOUT_MS);
        assert_true(c >= 0);
        if (c == '\n') break;
        line[n++] = (char)c;
        assert_true(n < (1 << 20));
    }
    line[n] = 0;
    json_object *o = json_tokener_parse(line);
    if (!o) fprintf(stderr, "unparsable reply: %s\n", line);
    free(line);
    assert_non_null(o);
    assert_true(json_object_is_type(o, json_type_object));
    return o;
}

static json_object *rpc_fd(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_object *rpc_fd(int fd, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    buf[n++] = '\n';
    send_str(fd, buf, (size_t)n);
    return read_reply(fd);
}

/* One request on a fresh connection. */
static json_object *rpc(struct fixture *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_object *rpc(struct fixture *f, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    buf[n++] = '\n';
    int fd = conn(f);
    send_str(fd, buf, (size_t)n);
    json_object *r = read_reply(fd);
    close(fd);
    return r;
}

static bool is_ok(json_object *r) {
    json_object *v;
    return json_object_object_get_ex(r, "ok", &v) && json_object_is_type(v, json_type_boolean) &&
           json_object_get_boolean(v);
}

static const char *str(json_object *r, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(r, key, &v) || !json_object_is_type(v, json_type_string)) return "";
    return json_object_get_string(v);
}

static int64_t num(json_object *r, const char *key) {
    json_object *v;
    assert_true(json_object_object_get_ex(r, key, &v));
    assert_true(json_object_is_type(v, json_type_int));
    return json_object_get_int64(v);
}

#define assert_ok(r)                                                                                                 \
    do {                                                                                                             \
        json_object *r_ = (r);                                                                                       \
        if (!is_ok(r_)) fail_msg("expected ok, got %s", json_object_to_json_string(r_));                           \
        json_object_put(r_);                                                                                         \
    } while (0)

/* Checks an error reply's code and that its message contains `part`. */
static void expect_error(json_object *r, const char *code, const char *part) {
    if (is_ok(r)) fail_msg("expected an error, got %s", json_object_to_json_string(r));
    assert_string_equal(str(r, "code"), code);
    if (!strstr(str(r, "error"), part)) fail_msg("error '%s' does not mention '%s'", str(r, "error"), part);
    json_object_put(r);
}

static void create_vm(struct fixture *f, const char *name) {
    assert_ok(rpc(f, "{\"op\":\"create\",\"name\":\"%s\",\"kernel\":\"%s\"}", name, f->kernel));
}

/* ---- the socket ---- */

static void test_socket_is_owner_only(void **state) {
    struct fixture *f = *state;
    struct stat st;
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_uid, geteuid());
}

static void test_socket_file_checks(void **state) {
    struct fixture *f = *state;
    char err[256];
    /* A live socket is not taken over. */
    assert_null(api_server_open(f->m, f->path, err, sizeof err));
    assert_non_null(strstr(err, "already serving"));
    /* Nor is a file that is not a socket. */
    char other[160];
    snprintf(other, sizeof other, "%s/plain", f->dir);
    FILE *p = fopen(other, "w");
    fclose(p);
    assert_null(api_server_open(f->m, other, err, sizeof err));
    assert_non_null(strstr(err, "not a socket"));
    unlink(other);
    /* A stale socket (nobody listening) is replaced. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    unix_addr(&a, other);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
    struct api_server *s = api_server_open(f->m, other, err, sizeof err);
    assert_non_null(s);
    api_server_close(s);
    struct stat st;
    assert_int_equal(lstat(other, &st), -1); /* removed on close */
    /* A path too long for a socket address. */
    char longp[300];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    assert_null(api_server_open(f->m, longp, err, sizeof err));
    assert_non_null(strstr(err, "longer than"));
}

/* ---- every op ---- */

static void test_create_and_stats(void **state) {
    struct fixture *f = *state;
    json_object *r = rpc(f,
                         "{\"op\":\"create\",\"name\":\"vm1\",\"kernel\":\"%s\",\"initrd\":null,\"append\":\"console=ttyS0 "
                         "quiet\",\"mem\":\"128M\",\"cpus\":2,\"shares\":500,\"cap\":50,\"bios\":null}",
                         f->kernel);
    assert_true(is_ok(r));
    assert_string_equal(str(r, "name"), "vm1");
    assert_string_equal(str(r, "state"), "created");
    json_object_put(r);

    r = rpc(f, "{\"op\":\"stats\",\"name\":\"vm1\"}");
    assert_true(is_ok(r));
    assert_string_equal(str(r, "name"), "vm1");
    assert_string_equal(str(r, "state"), "created");
    assert_int_equal(num(r, "cpus"), 2);
    assert_int_equal(num(r, "shares"), 500);
    assert_int_equal(num(r, "cap_percent"), 50);
    assert_int_equal(num(r, "mem_size"), 128 << 20);
    assert_int_equal(num(r, "mem_backed"), FAKE_VM_FOOTPRINT);
    assert_int_equal(num(r, "cpu_ns"), 0);
    assert_int_equal(num(r, "instructions"), 0);
    assert_int_equal(num(r, "exit_status"), 0);
    assert_string_equal(str(r, "exit_message"), "");
    json_object_put(r);

    /* Defaults, and mem as a number of bytes. */
    r = rpc(f, "{\"op\":\"create\",\"name\":\"vm2\",\"kernel\":\"%s\",\"mem\":16777216}", f->kernel);
    assert_true(is_ok(r));
    assert_int_equal(num(r, "cpus"), 1);
    assert_int_equal(num(r, "shares"), 1000);
    assert_int_equal(num(r, "cap_percent"), 0);
    assert_int_equal(num(r, "mem_size"), 16 << 20);
    json_object_put(r);
    r = rpc(f, "{\"op\":\"create\",\"name\":\"vm3\",\"kernel\":\"%s\",\"mem\":\"1000001K\"}", f->kernel);
    assert_int_equal(num(r, "mem_size"), (1000001 * 1024 + 4095) & ~4095); /* rounded up to a page */
    json_object_put(r);
}

static json_object *obj(json_object *r, const char *key);

/* The engine a VM runs on, its translator's counters, and bad values. */
static void test_engine(void **state) {
    struct fixture *f = *state;
    const char *k = f->kernel;
    /* Without "engine" the monitor picks: the translator on this host. */
    json_object *r = rpc(f, "{\"op\":\"create\",\"name\":\"dflt\",\"kernel\":\"%s\"}", k);
    assert_true(is_ok(r));
    assert_string_equal(str(r, "engine"), "jit");
    assert_true(json_object_is_type(obj(r, "jit"), json_type_object));
    json_object_put(r);
    assert_int_equal(fake_jit_cache(f->m, "dflt"), 0);

    r = rpc(f, "{\"op\":\"create\",\"name\":\"slow\",\"kernel\":\"%s\",\"engine\":\"interp\"}", k);
    assert_true(is_ok(r));
    assert_string_equal(str(r, "engine"), "interp");
    assert_null(obj(r, "jit")); /* present, and null */
    json_object_put(r);

    r = rpc(f, "{\"op\":\"create\",\"name\":\"fast\",\"kernel\":\"%s\",\"engine\":\"jit\",\"jit_cache\":\"64M\"}", k);
    assert_true(is_ok(r));
    assert_string_equal(str(r, "engine"), "jit");
    json_object *j = obj(r, "jit");
    assert_int_equal(num(j, "translated_blocks"), 0);
    assert_int_equal(num(j, "translated_instructions"), 0);
    assert_int_equal(num(j, "code_bytes"), 0);
    assert_int_equal(num(j, "flushes"), 0);
    assert_int_equal(num(j, "translate_ns"), 0);
    assert_int_equal(num(j, "dispatches"), 0);
    json_object_put(r);
    assert_int_equal(fake_jit_cache(f->m, "fast"), 64 << 20);
    assert_ok(rpc(f, "{\"op\":\"create\",\"name\":\"bytes\",\"kernel\":\"%s\",\"jit_cache\":%d}", k, 3 << 20));
    assert_int_equal(fake_jit_cache(f->m, "bytes"), 3 << 20);

    /* The counters reach stats and list. */
    assert_ok(rpc(f, "{\"op\":\"start\",\"name\":\"fast\"}"));
    assert_ok(rpc(f, "{\"op\":\"start\",\"name\":\"slow\"}"));
    r = rpc(f, "{\"op\":\"stats\",\"name\":\"fast\"}");
    j = obj(r, "jit");
    assert_int_equal(num(j, "translated_blocks"), 10);
    assert_int_equal(num(j, "translated_instructions"), 80);
    assert_int_equal(num(j, "code_bytes"), 4096);
    assert_int_equal(num(j, "translate_ns"), 250000);
    assert_int_equal(num(j, "dispatches"), 5);
    json_object_put(r);
    r = rpc(f, "{\"op\":\"list\"}");
    json_object *vms = obj(r, "vms");
    assert_int_equal(json_object_array_length(vms), 4);
    const char *want[][2] = {{"bytes", "jit"}, {"dflt", "jit"}, {"fast", "jit"}, {"slow", "interp"}};
    for (size_t i = 0; i < 4; i++) {
        json_object *v = json_object_array_get_idx(vms, i);
        assert_string_equal(str(v, "name"), want[i][0]);
        assert_string_equal(str(v, "engine"), want[i][1]);
    }
    assert_null(obj(json_object_array_get_idx(vms, 3), "jit"));
    json_object_put(r);

    /* Bad values are refused, with what was wrong, and create nothing. */
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"engine\":\"qemu\"}", k), "bad_request",
                 "field \"engine\" must be \"jit\" or \"interp\", not \"qemu\"");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"engine\":\"JIT\"}", k), "bad_request",
                 "not \"JIT\"");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"engine\":\"\"}", k), "bad_request",
                 "field \"engine\" must be \"jit\" or \"interp\"");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"engine\":1}", k), "bad_request",
                 "field \"engine\" must be a string");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"jit_cache\":\"512K\"}", k),
                 "bad_request", "field \"jit_cache\" must be at least 1 MiB");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"jit_cache\":\"5G\"}", k),
                 "bad_request", "field \"jit_cache\" is too large: at most 4096 MiB");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"jit_cache\":\"big\"}", k),
                 "bad_request", "not a size");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"jit_cache\":true}", k),
                 "bad_request", "\"jit_cache\" must be a size string");
    expect_error(rpc(f, "{\"op\":\"start\",\"name\":\"slow\",\"engine\":\"jit\"}"), "bad_request",
                 "unknown field \"engine\"");
    expect_error(rpc(f, "{\"op\":\"stats\",\"name\":\"t\"}"), "not_found", "t");
}

static void test_lifecycle(void **state) {
    struct fixture *f = *state;
    create_vm(f, "life");
    static const struct {
        const char *op, *state;
    } steps[] = {{"start", "running"}, {"pause", "paused"}, {"resume", "running"}, {"stop", "stopped"}};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        json_object *r = rpc(f, "{\"op\":\"%s\",\"name\":\"life\"}", steps[i].op);
        assert_true(is_ok(r));
        assert_string_equal(str(r, "name"), "life");
        assert_string_equal(str(r, "state"), steps[i].state);
        json_object_put(r);
    }
    json_object *r = rpc(f, "{\"op\":\"stats\",\"name\":\"life\"}");
    assert_string_equal(str(r, "state"), "stopped");
    assert_int_equal(num(r, "exit_status"), 6);
    assert_string_equal(str(r, "exit_message"), "stopped by the monitor");
    assert_true(num(r, "instructions") > 0);
    assert_true(num(r, "cpu_ns") > 0);
    json_object_put(r);
    /* Operations the state does not allow. */
    expect_error(rpc(f, "{\"op\":\"resume\",\"name\":\"life\"}"), "bad_state", "state");
    expect_error(rpc(f, "{\"op\":\"stop\",\"name\":\"life\"}"), "bad_state", "state");
    r = rpc(f, "{\"op\":\"destroy\",\"name\":\"life\"}");
    assert_true(is_ok(r));
    assert_string_equal(str(r, "name"), "life");
    json_object_put(r);
    expect_error(rpc(f, "{\"op\":\"stats\",\"name\":\"life\"}"), "not_found", "life");
}

static void test_list(void **state) {
    struct fixture *f = *state;
    json_object *r = rpc(f, "{\"op\":\"list\"}");
    assert_true(is_ok(r));
    json_object *vms;
    assert_true(json_object_object_get_ex(r, "vms", &vms));
    assert_int_equal(json_object_array_length(vms), 0);
    json_object_put(r);
    const char *names[] = {"zeta", "alpha", "mid.1", "b_2-x"};
    for (int i = 0; i < 4; i++) create_vm(f, names[i]);
    assert_ok(rpc(f, "{\"op\":\"start\",\"name\":\"mid.1\"}"));
    r = rpc(f, "{\"op\":\"list\"}");
    assert_true(json_object_object_get_ex(r, "vms", &vms));
    assert_int_equal(json_object_array_length(vms), 4);
    const char *sorted[] = {"alpha", "b_2-x", "mid.1", "zeta"};
    for (int i = 0; i < 4; i++) {
        json_object *v = json_object_array_get_idx(vms, (size_t)i);
        assert_string_equal(str(v, "name"), sorted[i]);
        assert_string_equal(str(v, "state"), i == 2 ? "running" : "created");
        assert_int_equal(num(v, "mem_size"), 256 << 20);
    }
    json_object_put(r);
}

static void test_memory(void **state) {
    struct fixture *f = *state;
    json_object *r = rpc(f, "{\"op\":\"memory\"}");
    assert_true(is_ok(r));
    assert_int_equal(num(r, "total"), 1 << 30);
    assert_int_equal(num(r, "free"), 1 << 30);
    assert_int_equal(num(r, "used"), 0);
    json_object_put(r);
    create_vm(f, "m1");
    r = rpc(f, "{\"op\":\"memory\"}");
    assert_int_equal(num(r, "used"), FAKE_VM_FOOTPRINT);
    assert_int_equal(num(r, "free") + num(r, "used"), num(r, "total"));
    json_object_put(r);
}

static void test_shutdown(void **state) {
    struct fixture *f = *state;
    int fd = conn(f);
    assert_ok(rpc_fd(fd, "{\"op\":\"shutdown\"}"));
    for (int i = 0; i < 500 && !__atomic_load_n(&f->finished, __ATOMIC_SEQ_CST); i++) usleep(10000);
    assert_true(__atomic_load_n(&f->finished, __ATOMIC_SEQ_CST));
    assert_int_equal(f->rc, 0);
    close(fd);
}

/* ---- bad requests ---- */

static void test_malformed_json(void **state) {
    struct fixture *f = *state;
    int fd = conn(f);
    expect_error(rpc_fd(fd, "{\"op\": \"list\""), "bad_request", "malformed JSON");
    expect_error(rpc_fd(fd, "{op: list}"), "bad_request", "malformed JSON");
    expect_error(rpc_fd(fd, "{\"op\":\"list\",}"), "bad_request", "malformed JSON");
    expect_error(rpc_fd(fd, "{\"op\":\"list\"} {\"op\":\"list\"}"), "bad_request", "after the object");
    expect_error(rpc_fd(fd, "hello"), "bad_request", "malformed JSON");
    expect_error(rpc_fd(fd, "[\"op\",\"list\"]"), "bad_request", "must be a JSON object");
    expect_error(rpc_fd(fd, "\"list\""), "bad_request", "must be a JSON object");
    expect_error(rpc_fd(fd, "42"), "bad_request", "must be a JSON object");
    expect_error(rpc_fd(fd, "{\"op\":\"\xff\xfe\"}"), "bad_request", "malformed JSON");
    char deep[200] = "{\"op\":\"list\",\"x\":";
    for (int i = 0; i < 40; i++) strcat(deep, "[");
    for (int i = 0; i < 40; i++) strcat(deep, "]");
    strcat(deep, "}");
    expect_error(rpc_fd(fd, "%s", deep), "bad_request", "malformed JSON");
    /* NUL bytes inside the line. */
    send_str(fd, "{\"op\":\0\"list\"}\n", 15);
    expect_error(read_reply(fd), "bad_request", "malformed JSON");
    /* The connection still works, blank lines are skipped, CRLF is fine. */
    send_cstr(fd, "\n  \r\n");
    assert_ok(rpc_fd(fd, "{\"op\":\"list\"}\r"));
    close(fd);
}

static void test_missing_fields(void **state) {
    struct fixture *f = *state;
    expect_error(rpc(f, "{}"), "bad_request", "missing field \"op\"");
    expect_error(rpc(f, "{\"name\":\"vm1\"}"), "bad_request", "missing field \"op\"");
    expect_error(rpc(f, "{\"op\":null}"), "bad_request", "missing field \"op\"");
    const char *ops[] = {"start", "pause", "resume", "stop", "destroy", "stats", "console", "create"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        expect_error(rpc(f, "{\"op\":\"%s\"}", ops[i]), "bad_request", "missing field \"name\"");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"k\"}"), "bad_request", "nothing to run");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"k\",\"kernel\":null}"), "bad_request", "nothing to run");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"k\",\"bios\":\"%s\",\"initrd\":\"%s\"}", f->kernel, f->kernel),
                 "bad_request", "\"initrd\" needs \"kernel\"");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"k\",\"kernel\":\"\"}"), "bad_request", "empty");
}

static void test_wrong_types(void **state) {
    struct fixture *f = *state;
    expect_error(rpc(f, "{\"op\":1}"), "bad_request", "\"op\" must be a string");
    expect_error(rpc(f, "{\"op\":[\"list\"]}"), "bad_request", "\"op\" must be a string");
    expect_error(rpc(f, "{\"op\":\"start\",\"name\":7}"), "bad_request", "\"name\" must be a string");
    expect_error(rpc(f, "{\"op\":\"start\",\"name\":{}}"), "bad_request", "\"name\" must be a string");
    const char *k = f->kernel;
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":true}"), "bad_request",
                 "\"kernel\" must be a string");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"cpus\":\"2\"}", k), "bad_request",
                 "\"cpus\" must be an integer");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"cpus\":1.5}", k), "bad_request",
                 "\"cpus\" must be an integer");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"cpus\":0}", k), "bad_request",
                 "\"cpus\" must be from 1");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"cpus\":99999999999999999999}", k),
                 "bad_request", "\"cpus\" must be from 1");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"shares\":0}", k), "bad_request",
                 "\"shares\" must be from 1 to 100000");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"cap\":101}", k), "bad_request",
                 "\"cap\" must be from 0 to 100");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"cap\":-1}", k), "bad_request",
                 "\"cap\"");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"mem\":\"lots\"}", k), "bad_request",
                 "not a size");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"mem\":\"12Q\"}", k), "bad_request",
                 "not a size");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"mem\":\"512K\"}", k), "bad_request",
                 "at least 1 MiB");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"mem\":-5}", k), "bad_request",
                 "negative");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"mem\":1.5}", k), "bad_request",
                 "\"mem\" must be");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"%s\",\"mem\":\"99999G\"}", k), "bad_request",
                 "too large");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"t\",\"kernel\":\"a\\u0000b\"}"), "bad_request", "NUL");
    /* Names. */
    expect_error(rpc(f, "{\"op\":\"stats\",\"name\":\"\"}"), "bad_request", "bad VM name");
    expect_error(rpc(f, "{\"op\":\"stats\",\"name\":\"a b\"}"), "bad_request", "bad VM name");
    expect_error(rpc(f, "{\"op\":\"stats\",\"name\":\"../x\"}"), "bad_request", "bad VM name");
    expect_error(rpc(f, "{\"op\":\"stats\",\"name\":\"%064d\"}", 0), "bad_request", "bad VM name");
    json_object *r = rpc(f, "{\"op\":\"create\",\"name\":\"%063d\",\"kernel\":\"%s\"}", 0, k);
    assert_true(is_ok(r));
    json_object_put(r);
    /* Nothing was created by the bad requests. */
    r = rpc(f, "{\"op\":\"list\"}");
    json_object *vms;
    assert_true(json_object_object_get_ex(r, "vms", &vms));
    assert_int_equal(json_object_array_length(vms), 1);
    json_object_put(r);
}

static void test_unknown_op_and_field(void **state) {
    struct fixture *f = *state;
    expect_error(rpc(f, "{\"op\":\"reboot\",\"name\":\"vm1\"}"), "bad_request", "unknown op \"reboot\"");
    expect_error(rpc(f, "{\"op\":\"LIST\"}"), "bad_request", "unknown op");
    expect_error(rpc(f, "{\"op\":\"list\",\"name\":\"vm1\"}"), "bad_request", "unknown field \"name\"");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"x\",\"kernel\":\"%s\",\"memory\":\"1G\"}", f->kernel),
                 "bad_request", "unknown field \"memory\"");
    expect_error(rpc(f, "{\"op\":\"start\",\"name\":\"x\",\"cpus\":1}"), "bad_request", "unknown field \"cpus\"");
}

static void test_unknown_vm(void **state) {
    struct fixture *f = *state;
    create_vm(f, "real");
    const char *ops[] = {"start", "pause", "resume", "stop", "destroy", "stats", "console"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        expect_error(rpc(f, "{\"op\":\"%s\",\"name\":\"ghost\"}", ops[i]), "not_found", "ghost");
    json_object *r = rpc(f, "{\"op\":\"stats\",\"name\":\"real\"}");
    assert_string_equal(str(r, "state"), "created");
    json_object_put(r);
}

static void test_duplicate_name(void **state) {
    struct fixture *f = *state;
    create_vm(f, "twin");
    assert_ok(rpc(f, "{\"op\":\"start\",\"name\":\"twin\"}"));
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"twin\",\"kernel\":\"%s\"}", f->kernel), "exists", "twin");
    json_object *r = rpc(f, "{\"op\":\"stats\",\"name\":\"twin\"}");
    assert_string_equal(str(r, "state"), "running"); /* the first one is untouched */
    json_object_put(r);
}

static void test_monitor_refuses(void **state) {
    struct fixture *f = *state;
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"nok\",\"kernel\":\"%s/missing\"}", f->dir), "invalid",
                 "cannot open kernel");
}

static void test_memory_exhausted(void **state) {
    struct fixture *f = *state; /* room for three VMs */
    create_vm(f, "a");
    create_vm(f, "b");
    create_vm(f, "c");
    assert_ok(rpc(f, "{\"op\":\"start\",\"name\":\"a\"}"));
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"d\",\"kernel\":\"%s\"}", f->kernel), "no_memory",
                 "machine memory exhausted");
    json_object *r = rpc(f, "{\"op\":\"stats\",\"name\":\"a\"}");
    assert_string_equal(str(r, "state"), "running");
    json_object_put(r);
    /* Destroying one makes room. */
    assert_ok(rpc(f, "{\"op\":\"destroy\",\"name\":\"b\"}"));
    create_vm(f, "d");
}

/* ---- framing ---- */

static void test_oversized_line(void **state) {
    struct fixture *f = *state;
    int fd = conn(f);
    /* Exactly API_MAX_REQUEST bytes is allowed. */
    const char *req = "{\"op\":\"list\"}";
    char *big = malloc(4 * API_MAX_REQUEST);
    memset(big, ' ', 4 * API_MAX_REQUEST);
    memcpy(big, req, strlen(req));
    big[API_MAX_REQUEST] = '\n';
    send_str(fd, big, API_MAX_REQUEST + 1);
    assert_ok(read_reply(fd));
    /* One byte more is not, and gets one error... */
    big[API_MAX_REQUEST] = ' ';
    big[API_MAX_REQUEST + 1] = '\n';
    send_str(fd, big, API_MAX_REQUEST + 2);
    expect_error(read_reply(fd), "too_large", "larger than 65536 bytes");
    /* ...as does a far longer one, sent in pieces. */
    big[API_MAX_REQUEST + 1] = ' ';
    big[4 * API_MAX_REQUEST - 1] = '\n';
    for (size_t off = 0; off < 4 * API_MAX_REQUEST; off += 1000) {
        size_t n = 4 * API_MAX_REQUEST - off < 1000 ? 4 * API_MAX_REQUEST - off : 1000;
        send_str(fd, big + off, n);
    }
    expect_error(read_reply(fd), "too_large", "larger than");
    /* The next line is served normally, even in the same packet as the end of the long one. */
    free(big);
    assert_ok(rpc_fd(fd, "{\"op\":\"memory\"}"));
    char tail[] = "xxxx\n{\"op\":\"list\"}\n";
    big = malloc(API_MAX_REQUEST + 10);
    memset(big, 'x', API_MAX_REQUEST + 10);
    send_str(fd, big, API_MAX_REQUEST + 10);
    send_str(fd, tail, strlen(tail));
    expect_error(read_reply(fd), "too_large", "larger than");
    assert_ok(read_reply(fd));
    free(big);
    close(fd);
}

static void test_pipelined_requests(void **state) {
    struct fixture *f = *state;
    int fd = conn(f);
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "{\"op\":\"create\",\"name\":\"p1\",\"kernel\":\"%s\"}\n{\"op\":\"start\",\"name\":\"p1\"}\n"
                     "{\"op\":\"bogus\"}\n{\"op\":\"stats\",\"name\":\"p1\"}\n",
                     f->kernel);
    send_str(fd, buf, (size_t)n);
    json_object *r = read_reply(fd);
    assert_string_equal(str(r, "state"), "created");
    json_object_put(r);
    r = read_reply(fd);
    assert_string_equal(str(r, "state"), "running");
    json_object_put(r);
    expect_error(read_reply(fd), "bad_request", "unknown op");
    r = read_reply(fd);
    assert_string_equal(str(r, "state"), "running");
    json_object_put(r);
    close(fd);
}

static void test_disconnect_mid_request(void **state) {
    struct fixture *f = *state;
    /* Half-closed: the client still reads the error. */
    int fd = conn(f);
    send_cstr(fd, "{\"op\":\"create\",\"name\":\"half\",\"ker");
    shutdown(fd, SHUT_WR);
    expect_error(read_reply(fd), "incomplete", "connection closed");
    assert_int_equal(read_byte(fd, TIMEOUT_MS), -1); /* then the server closes */
    close(fd);
    /* Gone entirely, several times over, and mid-reply. */
    for (int i = 0; i < 20; i++) {
        fd = conn(f);
        send_cstr(fd, "{\"op\":\"list\"");
        close(fd);
        fd = conn(f);
        send_cstr(fd, "{\"op\":\"list\"}\n{\"op\":\"list\"}\n{\"op\":\"list\"}\n");
        close(fd);
        fd = conn(f);
        close(fd);
    }
    /* The server and its VMs are fine. */
    create_vm(f, "after");
    json_object *r = rpc(f, "{\"op\":\"list\"}");
    json_object *vms;
    assert_true(json_object_object_get_ex(r, "vms", &vms));
    assert_int_equal(json_object_array_length(vms), 1);
    json_object_put(r);
}

struct hammer {
    struct fixture *f;
    int id;
    int failures;
};

static void *hammer_thread(void *arg) {
    struct hammer *h = arg;
    char name[32];
    snprintf(name, sizeof name, "h%d", h->id);
    for (int i = 0; i < 25; i++) {
        int fd = connect_to(h->f->path);
        if (fd < 0) {
            h->failures++;
            continue;
        }
        char req[512];
        int n = snprintf(req, sizeof req,
                         "{\"op\":\"create\",\"name\":\"%s\",\"kernel\":\"%s\"}\n{\"op\":\"start\",\"name\":\"%s\"}\n"
                         "{\"op\":\"list\"}\n{\"op\":\"destroy\",\"name\":\"%s\"}\n",
                         name, h->f->kernel, name, name);
        if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) h->failures++;
        int lines = 0;
        char c;
        char line[65536];
        size_t len = 0;
        while (lines < 4 && recv(fd, &c, 1, 0) == 1) {
            if (c != '\n') {
                if (len < sizeof line - 1) line[len++] = c;
                continue;
            }
            line[len] = 0;
            if (!strstr(line, "\"ok\":true")) h->failures++;
            len = 0;
            lines++;
        }
        if (lines != 4) h->failures++;
        close(fd);
    }
    return NULL;
}

static void test_concurrent_clients(void **state) {
    struct fixture *f = *state;
    create_vm(f, "bystander");
    assert_ok(rpc(f, "{\"op\":\"start\",\"name\":\"bystander\"}"));
    struct hammer h[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        h[i] = (struct hammer){.f = f, .id = i};
        pthread_create(&t[i], NULL, hammer_thread, &h[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(h[i].failures, 0);
    }
    json_object *r = rpc(f, "{\"op\":\"stats\",\"name\":\"bystander\"}");
    assert_string_equal(str(r, "state"), "running");
    json_object_put(r);
}

static void test_connection_limit(void **state) {
    struct fixture *f = *state;
    int fds[API_MAX_CONNECTIONS];
    for (int i = 0; i < API_MAX_CONNECTIONS; i++) {
        fds[i] = conn(f);
        assert_ok(rpc_fd(fds[i], "{\"op\":\"memory\"}")); /* its thread is running */
    }
    int extra = conn(f);
    expect_error(read_reply(extra), "busy", "too many connections");
    close(extra);
    for (int i = 0; i < API_MAX_CONNECTIONS; i++) close(fds[i]);
    /* Once they are gone, new clients are served again. */
    json_object *r = NULL;
    for (int i = 0; i < 200; i++) {
        r = rpc(f, "{\"op\":\"list\"}");
        if (is_ok(r)) break;
        json_object_put(r);
        r = NULL;
        usleep(10000);
    }
    assert_non_null(r);
    json_object_put(r);
}

/* ---- console ---- */

/* Reads exactly n bytes (or fails on EOF/timeout). */
static void read_exact(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_true(poll(&p, 1, TIMEOUT_MS) > 0);
        ssize_t k = recv(fd, buf + got, n - got, 0);
        assert_true(k > 0);
        got += (size_t)k;
    }
}

static void expect_stream(int fd, const char *want) {
    size_t n = strlen(want);
    char *buf = malloc(n + 1);
    read_exact(fd, buf, n);
    buf[n] = 0;
    assert_string_equal(buf, want);
    free(buf);
}

/* Waits for the guest's input queue to hold `want`. */
static void expect_input(struct fixture *f, const char *name, const char *want) {
    char buf[4096];
    size_t len = 0, n = strlen(want);
    for (int i = 0; i < 500 && len < n; i++) {
        len += fake_console_input(f->m, name, buf + len, sizeof buf - len);
        if (len < n) usleep(10000);
    }
    buf[len] = 0;
    assert_string_equal(buf, want);
}

static void expect_eof(int fd) {
    char c;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_true(poll(&p, 1, TIMEOUT_MS) > 0);
    assert_int_equal(recv(fd, &c, 1, 0), 0);
}

static void test_console_stream(void **state) {
    struct fixture *f = *state;
    create_vm(f, "con");
    assert_ok(rpc(f, "{\"op\":\"start\",\"name\":\"con\"}"));
    fake_console_output(f->m, "con", "boot log\r\nrvisor:/# ", 20);
    int fd = conn(f);
    /* Input typed right behind the request line reaches the guest too. */
    send_cstr(fd, "{\"op\":\"console\",\"name\":\"con\"}\nuname");
    json_object *r = read_reply(fd);
    assert_true(is_ok(r));
    assert_string_equal(str(r, "name"), "con");
    json_object_put(r);
    expect_stream(fd, "boot log\r\nrvisor:/# "); /* from the oldest output */
    expect_input(f, "con", "uname");
    send_cstr(fd, " -m\n");
    expect_input(f, "con", " -m\n");
    fake_console_output(f->m, "con", "riscv64\r\n", 9);
    expect_stream(fd, "riscv64\r\n");
    /* Bytes that look like requests are just console input now. */
    send_cstr(fd, "{\"op\":\"list\"}\n");
    expect_input(f, "con", "{\"op\":\"list\"}\n");
    /* A second viewer sees everything from the start. */
    int fd2 = conn(f);
    assert_ok(rpc_fd(fd2, "{\"op\":\"console\",\"name\":\"con\"}"));
    expect_stream(fd2, "boot log\r\nrvisor:/# riscv64\r\n");
    /* Destroying the VM ends both streams; the monitor carries on. */
    assert_ok(rpc(f, "{\"op\":\"destroy\",\"name\":\"con\"}"));
    expect_eof(fd);
    expect_eof(fd2);
    close(fd);
    close(fd2);
    assert_ok(rpc(f, "{\"op\":\"list\"}"));
}

static void test_console_keeps_latest_output(void **state) {
    struct fixture *f = *state;
    create_vm(f, "ring");
    size_t total = 70000;
    char *out = malloc(total);
    for (size_t i = 0; i < total; i++) out[i] = (char)('a' + i % 26);
    fake_console_output(f->m, "ring", out, total);
    int fd = conn(f);
    assert_ok(rpc_fd(fd, "{\"op\":\"console\",\"name\":\"ring\"}"));
    char *got = malloc(65536);
    read_exact(fd, got, 65536);
    assert_memory_equal(got, out + total - 65536, 65536);
    /* Nothing more until the guest writes. */
    assert_int_equal(read_byte(fd, 100), -2);
    free(got);
    free(out);
    close(fd);
}

static void test_console_ends_when_guest_stops(void **state) {
    struct fixture *f = *state;
    create_vm(f, "stopper");
    assert_ok(rpc(f, "{\"op\":\"start\",\"name\":\"stopper\"}"));
    int fd = conn(f);
    assert_ok(rpc_fd(fd, "{\"op\":\"console\",\"name\":\"stopper\"}"));
    fake_console_output(f->m, "stopper", "reboot: Power down\r\n", 20);
    fake_guest_exit(f->m, "stopper", 0, "guest powered off");
    expect_stream(fd, "reboot: Power down\r\n");
    expect_eof(fd);
    close(fd);
    /* Attaching to a stopped VM replays its output and ends. */
    fd = conn(f);
    assert_ok(rpc_fd(fd, "{\"op\":\"console\",\"name\":\"stopper\"}"));
    expect_stream(fd, "reboot: Power down\r\n");
    expect_eof(fd);
    close(fd);
    json_object *r = rpc(f, "{\"op\":\"stats\",\"name\":\"stopper\"}");
    assert_string_equal(str(r, "state"), "stopped");
    assert_string_equal(str(r, "exit_message"), "guest powered off");
    json_object_put(r);
}

static void test_console_client_closes(void **state) {
    struct fixture *f = *state;
    create_vm(f, "quiet");
    fake_console_output(f->m, "quiet", "hello\r\n", 7);
    /* Half-close: everything so far arrives, then the end. */
    int fd = conn(f);
    send_cstr(fd, "{\"op\":\"console\",\"name\":\"quiet\"}\nbye\n");
    shutdown(fd, SHUT_WR);
    assert_ok(read_reply(fd));
    expect_stream(fd, "hello\r\n");
    expect_eof(fd);
    close(fd);
    expect_input(f, "quiet", "bye\n");
    /* Full close while streaming, many times over. */
    for (int i = 0; i < 10; i++) {
        fd = conn(f);
        assert_ok(rpc_fd(fd, "{\"op\":\"console\",\"name\":\"quiet\"}"));
        close(fd);
    }
    fake_console_output(f->m, "quiet", "still here\r\n", 12);
    json_object *r = rpc(f, "{\"op\":\"stats\",\"name\":\"quiet\"}");
    assert_string_equal(str(r, "state"), "created");
    json_object_put(r);
}

static void test_console_ends_at_server_close(void **state) {
    struct fixture *f = *state;
    create_vm(f, "c");
    int fd = conn(f);
    assert_ok(rpc_fd(fd, "{\"op\":\"console\",\"name\":\"c\"}"));
    int idle = conn(f); /* a connection in the middle of a request */
    send_cstr(idle, "{\"op\":");
    api_server_stop(f->s);
    pthread_join(f->thread, NULL);
    api_server_close(f->s);
    expect_eof(fd);
    /* It may get an "incomplete" error first, or nothing. */
    int c;
    while ((c = read_byte(idle, TIMEOUT_MS)) >= 0) {}
    assert_int_equal(c, -1);
    close(fd);
    close(idle);
    /* Let teardown run on a fresh server. */
    char err[256];
    f->s = api_server_open(f->m, f->path, err, sizeof err);
    assert_non_null(f->s);
    pthread_create(&f->thread, NULL, run_server, f);
}

/* ---- clients that misbehave, peers that may not talk ---- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Pipelines requests without reading a reply until neither the server nor
 * the socket takes more: the server is then stuck sending to it. Returns
 * how many requests were sent. */
static int fill_without_reading(int fd) {
    static const char req[] = "{\"op\":\"list\"}\n";
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    int sent = 0, idle_rounds = 0;
    for (int round = 0; round < 1000 && idle_rounds < 5; round++) {
        bool progress = false;
        while (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1)) {
            sent++;
            progress = true;
        }
        idle_rounds = progress ? 0 : idle_rounds + 1;
        usleep(20000);
    }
    assert_int_equal(idle_rounds, 5);
    return sent;
}

/* While others answer promptly, every request on a fresh connection and on
 * a kept one does too. */
static void expect_prompt_answers(struct fixture *f, int kept) {
    for (int i = 0; i < 20; i++) {
        double t0 = now_ms();
        json_object *r = rpc(f, "{\"op\":\"list\"}");
        json_object *vms;
        assert_true(json_object_object_get_ex(r, "vms", &vms));
        assert_int_equal(json_object_array_length(vms), 9);
        json_object_put(r);
        assert_ok(rpc_fd(kept, "{\"op\":\"memory\"}"));
        double took = now_ms() - t0;
        if (took > 1000) fail_msg("two requests took %.0f ms while other clients stalled", took);
    }
}

/* Reads until the server closes; returns how many reply lines came. */
static int drain_to_eof(int fd) {
    int lines = 0;
    char buf[65536];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_true(poll(&p, 1, TIMEOUT_MS) > 0); /* EOF comes, not a timeout */
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == ECONNRESET) return lines;
        assert_true(n >= 0);
        if (n == 0) return lines;
        for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
    }
}

static void test_stalled_clients_stall_nobody_else(void **state) {
    struct fixture *f = *state;
    for (int i = 0; i < 9; i++) {
        char name[16];
        snprintf(name, sizeof name, "big%d", i); /* longer list replies */
        create_vm(f, name);
    }
    int kept = conn(f);
    int silent = conn(f);
    int partial = conn(f);
    send_cstr(partial, "{\"op\":\"li");
    int deaf = conn(f);
    int sent = fill_without_reading(deaf);
    assert_true(sent > 100);
    expect_prompt_answers(f, kept);
    close(deaf);
    close(partial);
    close(silent);

    /* With short timeouts, the ones in the middle of something are dropped
     * and a silent connection between requests is left alone. */
    api_server_set_timeouts(f->s, 300, 300);
    silent = conn(f);
    partial = conn(f);
    send_cstr(partial, "{\"op\":\"li");
    deaf = conn(f);
    sent = fill_without_reading(deaf);
    expect_prompt_answers(f, kept);
    double t0 = now_ms();
    expect_error(read_reply(partial), "timeout", "not finished");
    expect_eof(partial);
    assert_true(now_ms() - t0 < TIMEOUT_MS);
    usleep(1000 * 1000); /* well past its send timeout: reading now must not revive it */
    int got = drain_to_eof(deaf);
    if (got >= sent) fail_msg("all %d replies were sent to a client that read none for seconds", sent);
    assert_int_equal(read_byte(silent, 500), -2); /* still open */
    assert_ok(rpc_fd(silent, "{\"op\":\"list\"}"));
    close(silent);
    close(partial);
    close(deaf);
    close(kept);
}

/* SO_PEERCRED: a process of another uid is refused even when the socket
 * file's mode lets it connect. The child takes that uid before it
 * connects, since the kernel records a peer's credentials at connect(2). */
static int connect_as(const char *path, uid_t uid) {
    if (setgid(uid) != 0 || setuid(uid) != 0) return 10;
    int fd = connect_to(path);
    if (fd < 0) return 11; /* the mode kept it out: not what is tested */
    const char req[] = "{\"op\":\"list\"}\n";
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET) return 12;
    char buf[4096];
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, TIMEOUT_MS) <= 0) return 13; /* neither closed nor answered */
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n < 0 && errno == ECONNRESET) break;
        if (n < 0) return 14;
        if (n == 0) break;
        len += (size_t)n;
        buf[len] = 0;
        if (strstr(buf, "\"ok\":true")) return 16; /* it was served */
        if (len == sizeof buf - 1) return 15;
    }
    buf[len] = 0;
    if (len && !strstr(buf, "\"code\":\"denied\"")) return 17;
    return 0;
}

static void test_peer_of_another_uid_is_refused(void **state) {
    struct fixture *f = *state;
    if (geteuid() != 0) skip(); /* only root can become another uid */
    assert_int_equal(chmod(f->dir, 0711), 0);
    assert_int_equal(chmod(f->path, 0777), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(connect_as(f->path, 65534));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0) fail_msg("uid 65534 was not refused (child status %d)", WEXITSTATUS(status));
    /* The owner (and root, here the same) is still served. */
    assert_ok(rpc(f, "{\"op\":\"list\"}"));
    chmod(f->path, 0600);
    chmod(f->dir, 0700);
}

static void test_console_client_limit(void **state) {
    struct fixture *f = *state;
    create_vm(f, "watched");
    int fds[API_MAX_CONSOLE_CLIENTS];
    for (int i = 0; i < API_MAX_CONSOLE_CLIENTS; i++) {
        fds[i] = conn(f);
        assert_ok(rpc_fd(fds[i], "{\"op\":\"console\",\"name\":\"watched\"}"));
    }
    int extra = conn(f);
    expect_error(rpc_fd(extra, "{\"op\":\"console\",\"name\":\"watched\"}"), "busy", "too many console clients");
    /* The refused client keeps its connection for requests. */
    assert_ok(rpc_fd(extra, "{\"op\":\"list\"}"));
    close(fds[0]);
    json_object *r = NULL;
    for (int i = 0; i < 200; i++) {
        r = rpc_fd(extra, "{\"op\":\"console\",\"name\":\"watched\"}");
        if (is_ok(r)) break;
        json_object_put(r);
        r = NULL;
        usleep(10000);
    }
    assert_non_null(r);
    json_object_put(r);
    close(extra);
    for (int i = 1; i < API_MAX_CONSOLE_CLIENTS; i++) close(fds[i]);
}

static void test_vm_limit(void **state) {
    struct fixture *f = *state; /* a monitor that may hold 3 VMs */
    create_vm(f, "one");
    create_vm(f, "two");
    create_vm(f, "three");
    expect_error(rpc(f, "{\"op\":\"create\",\"name\":\"four\",\"kernel\":\"%s\"}", f->kernel), "busy",
                 "as many VMs as it may");
    assert_ok(rpc(f, "{\"op\":\"destroy\",\"name\":\"two\"}"));
    create_vm(f, "four");
}

/* ---- protocol functions directly ---- */

static void test_parse_request(void **state) {
    (void)state;
    struct api_request req;
    char err[256];
    const char *line = "{\"op\":\"create\",\"name\":\"p\",\"kernel\":\"/k\",\"initrd\":\"/i\",\"mem\":\"64M\","
                       "\"cpus\":4,\"shares\":10,\"cap\":25,\"bios\":null}";
    assert_true(api_parse_request(line, strlen(line), &req, err, sizeof err));
    assert_int_equal(req.op, API_OP_CREATE);
    assert_string_equal(req.spec.name, "p");
    assert_string_equal(req.spec.kernel, "/k");
    assert_string_equal(req.spec.initrd, "/i");
    assert_string_equal(req.spec.append, "console=ttyS0");
    assert_null(req.spec.bios);
    assert_int_equal(req.spec.mem_size, 64 << 20);
    assert_int_equal(req.spec.cpus, 4);
    assert_int_equal(req.spec.shares, 10);
    assert_int_equal(req.spec.cap_percent, 25);
    assert_int_equal(req.spec.engine, VM_ENGINE_DEFAULT); /* the monitor's choice */
    assert_int_equal(req.spec.jit_cache, 0);
    api_request_free(&req);
    line = "{\"op\":\"create\",\"name\":\"p\",\"kernel\":\"/k\",\"engine\":\"interp\",\"jit_cache\":\"2M\"}";
    assert_true(api_parse_request(line, strlen(line), &req, err, sizeof err));
    assert_int_equal(req.spec.engine, VM_ENGINE_INTERP);
    assert_int_equal(req.spec.jit_cache, 2 << 20);
    api_request_free(&req);
    line = "{\"op\":\"create\",\"name\":\"p\",\"kernel\":\"/k\",\"engine\":\"jit\",\"jit_cache\":null}";
    assert_true(api_parse_request(line, strlen(line), &req, err, sizeof err));
    assert_int_equal(req.spec.engine, VM_ENGINE_JIT);
    assert_int_equal(req.spec.jit_cache, 0);
    api_request_free(&req);
    line = "{\"op\":\"create\",\"name\":\"p\",\"kernel\":\"/k\",\"engine\":\"default\"}";
    assert_false(api_parse_request(line, strlen(line), &req, err, sizeof err));
    assert_string_equal(err, "field \"engine\" must be \"jit\" or \"interp\", not \"default\"");
    /* Length is honoured: the same text cut short is incomplete. */
    assert_false(api_parse_request(line, 20, &req, err, sizeof err));
    assert_non_null(strstr(err, "ends in the middle"));
    const char *names[] = {"start", "pause", "resume", "stop", "destroy", "stats", "console"};
    enum api_op want[] = {API_OP_START, API_OP_PAUSE, API_OP_RESUME, API_OP_STOP,
                          API_OP_DESTROY, API_OP_STATS, API_OP_CONSOLE};
    for (size_t i = 0; i < 7; i++) {
        char l[128];
        snprintf(l, sizeof l, "{\"name\":\"v\",\"op\":\"%s\"}", names[i]);
        assert_true(api_parse_request(l, strlen(l), &req, err, sizeof err));
        assert_int_equal(req.op, want[i]);
        assert_string_equal(req.name, "v");
        api_request_free(&req);
    }
    line = "{\"op\":\"balloon\",\"name\":\"v\",\"target\":\"2G\"}";
    assert_true(api_parse_request(line, strlen(line), &req, err, sizeof err));
    assert_int_equal(req.op, API_OP_BALLOON);
    assert_int_equal(req.balloon_target, 2ull << 30);
    api_request_free(&req);
    assert_true(api_valid_name("a.B_c-9"));
    assert_false(api_valid_name("a/b"));
    assert_string_equal(api_state_name(VMS_PAUSED), "paused");
    assert_string_equal(api_error_code(MON_ENOMEM), "no_memory");
}

/* ---- the CLI client ---- */

struct captured {
    char out[65536], err[65536];
    int status;
};

/* Runs client_command with stdout and stderr captured and stdin from /dev/null. */
static void run_cli(struct captured *c, int argc, const char **args) {
    char *argv[32];
    for (int i = 0; i < argc; i++) argv[i] = (char *)args[i];
    argv[argc] = NULL;
    char outp[] = "/tmp/rvisor-api-out-XXXXXX", errp[] = "/tmp/rvisor-api-err-XXXXXX";
    int of = mkstemp(outp), ef = mkstemp(errp), nf = open("/dev/null", O_RDONLY);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2), si = dup(0);
    dup2(of, 1);
    dup2(ef, 2);
    dup2(nf, 0);
    c->status = client_command(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    dup2(si, 0);
    close(so);
    close(se);
    close(si);
    close(nf);
    memset(c->out, 0, sizeof c->out);
    memset(c->err, 0, sizeof c->err);
    ssize_t n = pread(of, c->out, sizeof c->out - 1, 0);
    ssize_t m = pread(ef, c->err, sizeof c->err - 1, 0);
    (void)n;
    (void)m;
    close(of);
    close(ef);
    unlink(outp);
    unlink(errp);
}

#define CLI(c, ...)                                                                                                  \
    do {                                                                                                             \
        const char *a_[] = {__VA_ARGS__};                                                                            \
        run_cli((c), (int)(sizeof a_ / sizeof *a_), a_);                                                             \
    } while (0)

static void expect_has(const char *text, const char *part) {
    if (strstr(text, part)) return;
    print_error("'%s' not found in:\n", part);
    print_error("%s\n", text);
    fail();
}

static void test_cli_commands(void **state) {
    struct fixture *f = *state;
    struct captured *c = malloc(sizeof *c);
    CLI(c, "create", "web", "--kernel", f->kernel, "--mem", "128M", "--cpus", "2", "--shares", "2000", "--cap", "40",
        "--append", "console=ttyS0 quiet", "--socket", f->path);
    assert_int_equal(c->status, 0);
    expect_has(c->out, "web: created");
    CLI(c, "create", "--socket", f->path, "db", "--kernel", f->kernel, "--engine", "interp");
    assert_int_equal(c->status, 0);
    CLI(c, "start", "web", "--socket", f->path);
    assert_int_equal(c->status, 0);
    expect_has(c->out, "web: running");
    CLI(c, "pause", "web", "--socket", f->path);
    expect_has(c->out, "web: paused");
    CLI(c, "resume", "web", "--socket", f->path);
    expect_has(c->out, "web: running");

    CLI(c, "ls", "--socket", f->path);
    assert_int_equal(c->status, 0);
    expect_has(c->out, "NAME");
    expect_has(c->out, "STATE");
    char *db = strstr(c->out, "db "), *web = strstr(c->out, "web ");
    assert_non_null(db);
    assert_non_null(web);
    assert_true(db < web);
    expect_has(web, "running");
    expect_has(web, "128M");
    expect_has(web, "40%");
    expect_has(db, "created");
    expect_has(db, "256M");
    expect_has(c->out, "ENGINE");
    expect_has(db, "interp");
    expect_has(web, "jit");

    CLI(c, "ls", "--json", "--socket", f->path);
    json_object *r = json_tokener_parse(c->out);
    assert_non_null(r);
    assert_true(is_ok(r));
    json_object_put(r);

    CLI(c, "stats", "web", "--socket", f->path);
    assert_int_equal(c->status, 0);
    expect_has(c->out, "name:          web");
    expect_has(c->out, "state:         running");
    expect_has(c->out, "cpus:          2");
    expect_has(c->out, "shares:        2000");
    expect_has(c->out, "cap:           40% of a host core");
    expect_has(c->out, "memory:        128M");
    expect_has(c->out, "backed:        16M");
    expect_has(c->out, "instructions:");
    expect_has(c->out, "engine:        jit\n");
    /* Three state changes so far, each of which the fake monitor counts as running a little. */
    expect_has(c->out, "translated:    30 blocks, 240 guest instructions, 12K of code now, 0 flushes\n");
    expect_has(c->out, "translating:   0.8 ms of host time\n");
    expect_has(c->out, "dispatches:    15 (5000 per million instructions)\n");
    CLI(c, "stats", "db", "--socket", f->path);
    assert_int_equal(c->status, 0);
    expect_has(c->out, "engine:        interp\n");
    assert_null(strstr(c->out, "translated:"));

    CLI(c, "stats", "--json", "web", "--socket", f->path);
    r = json_tokener_parse(c->out);
    assert_non_null(r);
    assert_string_equal(str(r, "state"), "running");
    assert_int_equal(num(r, "mem_size"), 128 << 20);
    json_object_put(r);

    CLI(c, "stop", "web", "--socket", f->path);
    assert_int_equal(c->status, 0);
    expect_has(c->out, "web: stopped (stopped by the monitor)");
    CLI(c, "stats", "web", "--socket", f->path);
    expect_has(c->out, "exit status:   6");
    CLI(c, "destroy", "web", "--socket", f->path);
    assert_int_equal(c->status, 0);
    expect_has(c->out, "web: destroyed");
    CLI(c, "ls", "--socket", f->path);
    assert_null(strstr(c->out, "web"));
    free(c);
}

static void test_cli_errors(void **state) {
    struct fixture *f = *state;
    struct captured *c = malloc(sizeof *c);
    char nowhere[160];
    snprintf(nowhere, sizeof nowhere, "%s/none.sock", f->dir);
    CLI(c, "ls", "--socket", nowhere);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "cannot connect to the monitor at ");
    expect_has(c->err, nowhere);
    CLI(c, "stats", "ghost", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "rvisor: no VM named \"ghost\"");
    CLI(c, "start", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "needs the name of a VM");
    CLI(c, "start", "a", "b", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "unexpected argument 'b'");
    CLI(c, "start", "a", "--kernel", "x", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "start does not take --kernel");
    CLI(c, "ls", "--frobnicate", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "unknown option '--frobnicate'");
    CLI(c, "create", "k", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "nothing to run");
    CLI(c, "create", "k", "--kernel", "/nonexistent/Image", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "/nonexistent/Image");
    CLI(c, "create", "k", "--kernel", f->kernel, "--cpus", "two", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "--cpus must be a number");
    CLI(c, "create", "k", "--kernel", f->kernel, "--mem", "huge", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "not a size");
    CLI(c, "create", "k", "--kernel", f->kernel, "--engine", "fast", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "rvisor: field \"engine\" must be \"jit\" or \"interp\", not \"fast\"");
    CLI(c, "create", "k", "--kernel", f->kernel, "--jit-cache", "100K", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "\"jit_cache\" must be at least 1 MiB");
    CLI(c, "create", "k", "--kernel", f->kernel, "--engine", "--socket", f->path);
    assert_int_equal(c->status, 1);
    CLI(c, "start", "k", "--engine", "jit", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "start does not take --engine");
    CLI(c, "create", "k", "--kernel", f->kernel, "--engine", "interp", "--jit-cache", "8M", "--socket", f->path);
    assert_int_equal(c->status, 0);
    assert_int_equal(fake_jit_cache(f->m, "k"), 8 << 20);
    CLI(c, "create", "bad name", "--kernel", f->kernel, "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "bad VM name");
    CLI(c, "create", "dup", "--kernel", f->kernel, "--socket", f->path);
    assert_int_equal(c->status, 0);
    CLI(c, "create", "dup", "--kernel", f->kernel, "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "exists");
    CLI(c, "stats", "dup", "--socket");
    assert_int_equal(c->status, 1);
    expect_has(c->err, "needs a value");
    CLI(c, "ls", "--help");
    assert_int_equal(c->status, 0);
    expect_has(c->out, "Usage: rvisor ls");
    free(c);
}

static void test_cli_console_without_terminal(void **state) {
    struct fixture *f = *state;
    create_vm(f, "tty");
    fake_console_output(f->m, "tty", "Welcome\r\nrvisor:/# ", 19);
    struct captured *c = malloc(sizeof *c);
    CLI(c, "console", "tty", "--socket", f->path);
    assert_int_equal(c->status, 0);
    assert_string_equal(c->out, "Welcome\r\nrvisor:/# ");
    CLI(c, "console", "nope", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "no VM named \"nope\"");
    free(c);
}


/* ---- the balloon ---- */

static json_object *obj(json_object *r, const char *key) {
    json_object *v;
    assert_true(json_object_object_get_ex(r, key, &v));
    return v;
}

static void test_balloon(void **state) {
    struct fixture *f = *state;
    create_vm(f, "b1");
    json_object *r = rpc(f, "{\"op\":\"stats\",\"name\":\"b1\"}");
    json_object *b = obj(r, "balloon");
    assert_true(json_object_is_type(b, json_type_object));
    assert_int_equal(num(b, "target"), 256 << 20);
    assert_int_equal(num(b, "actual"), 256 << 20);
    assert_int_equal(num(b, "size"), 0);
    assert_int_equal(num(b, "reported"), 0);
    json_object *st = obj(b, "stats");
    assert_int_equal(num(st, "total"), 248 << 20);
    assert_int_equal(num(st, "free"), 128 << 20);
    assert_int_equal(num(st, "minor_faults"), 4321);
    assert_int_equal(num(st, "age_ms"), 1500);
    assert_false(json_object_object_get_ex(st, "caches", NULL)); /* not sent by the guest */
    json_object_put(r);

    /* The reply is the VM's info after the change; target as a string or in bytes. */
    r = rpc(f, "{\"op\":\"balloon\",\"name\":\"b1\",\"target\":\"128M\"}");
    assert_true(is_ok(r));
    assert_string_equal(str(r, "name"), "b1");
    b = obj(r, "balloon");
    assert_int_equal(num(b, "target"), 128 << 20);
    assert_int_equal(num(b, "size"), 128 << 20);
    json_object_put(r);
    r = rpc(f, "{\"op\":\"balloon\",\"name\":\"b1\",\"target\":%d}", 200 << 20);
    assert_int_equal(num(obj(r, "balloon"), "target"), 200 << 20);
    json_object_put(r);

    expect_error(rpc(f, "{\"op\":\"balloon\",\"name\":\"b1\"}"), "bad_request", "missing field \"target\"");
    expect_error(rpc(f, "{\"op\":\"balloon\",\"name\":\"b1\",\"target\":\"lots\"}"), "bad_request", "not a size");
    expect_error(rpc(f, "{\"op\":\"balloon\",\"name\":\"b1\",\"target\":0}"), "bad_request", "at least 1 MiB");
    expect_error(rpc(f, "{\"op\":\"balloon\",\"name\":\"b1\",\"target\":-5}"), "bad_request", "negative");
    expect_error(rpc(f, "{\"op\":\"balloon\",\"name\":\"b1\",\"target\":true}"), "bad_request", "size string");
    expect_error(rpc(f, "{\"op\":\"balloon\",\"name\":\"b1\",\"target\":\"1G\",\"force\":1}"), "bad_request",
                 "unknown field \"force\"");
    expect_error(rpc(f, "{\"op\":\"balloon\",\"name\":\"nobody\",\"target\":\"1G\"}"), "not_found", "nobody");

    /* A VM created without a balloon has "balloon": null and refuses targets. */
    assert_ok(rpc(f, "{\"op\":\"create\",\"name\":\"b2\",\"kernel\":\"%s\",\"balloon\":false}", f->kernel));
    r = rpc(f, "{\"op\":\"stats\",\"name\":\"b2\"}");
    assert_true(json_object_object_get_ex(r, "balloon", &b));
    assert_null(b);
    json_object_put(r);
    expect_error(rpc(f, "{\"op\":\"balloon\",\"name\":\"b2\",\"target\":\"64M\"}"), "invalid", "no balloon");
    /* Nor does a stopped VM take one. */
    assert_ok(rpc(f, "{\"op\":\"stop\",\"name\":\"b1\"}"));
    expect_error(rpc(f, "{\"op\":\"balloon\",\"name\":\"b1\",\"target\":\"64M\"}"), "bad_state", "stopped");
}

static void test_cli_balloon(void **state) {
    struct fixture *f = *state;
    struct captured *c = malloc(sizeof *c);
    create_vm(f, "web");
    CLI(c, "balloon", "web", "96M", "--socket", f->path);
    assert_int_equal(c->status, 0);
    expect_has(c->out, "web: balloon target 96M (the guest keeps 96M now)");
    CLI(c, "stats", "web", "--socket", f->path);
    assert_int_equal(c->status, 0);
    expect_has(c->out, "balloon:       guest keeps 96M of target 96M (the balloon holds 160M)");
    expect_has(c->out, "released:      160M by inflating, 0B by free page reporting");
    expect_has(c->out, "guest memory:  total 248M, free 128M, minor faults 4321 (1.5s ago)");
    CLI(c, "balloon", "--json", "web", "1G", "--socket", f->path);
    json_object *r = json_tokener_parse(c->out);
    assert_non_null(r);
    assert_int_equal(num(obj(r, "balloon"), "target"), 256 << 20); /* all of its RAM */
    json_object_put(r);
    CLI(c, "balloon", "web", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "needs the memory size the guest is to keep");
    CLI(c, "balloon", "web", "lots", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "'lots' is not a size");
    CLI(c, "balloon", "web", "1M", "extra", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "unexpected argument 'extra'");
    CLI(c, "balloon", "--help");
    assert_int_equal(c->status, 0);
    expect_has(c->out, "keeps SIZE of its RAM");
    CLI(c, "create", "tiny", "--kernel", f->kernel, "--no-balloon", "--socket", f->path);
    CLI(c, "stats", "tiny", "--socket", f->path);
    expect_has(c->out, "balloon:       none");
    CLI(c, "balloon", "tiny", "64M", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "has no balloon device");
    free(c);
}

static void test_snapshot_ops(void **state) {
    struct fixture *f = *state;
    create_vm(f, "s1");
    char file[192];
    snprintf(file, sizeof file, "%s/s1.snap", f->dir);
    /* Only a started VM can be saved. */
    expect_error(rpc(f, "{\"op\":\"snapshot\",\"name\":\"s1\",\"file\":\"%s\"}", file), "bad_state", "not running");
    json_object_put(rpc(f, "{\"op\":\"start\",\"name\":\"s1\"}"));
    json_object *r = rpc(f, "{\"op\":\"snapshot\",\"name\":\"s1\",\"file\":\"%s\",\"stop\":true}", file);
    assert_true(is_ok(r));
    assert_string_equal(str(r, "state"), "paused");
    assert_string_equal(str(obj(r, "snapshot"), "file"), file);
    assert_true(num(obj(r, "snapshot"), "bytes") > 0);
    json_object_put(r);
    r = rpc(f, "{\"op\":\"restore\",\"name\":\"s2\",\"file\":\"%s\",\"paused\":true}", file);
    assert_true(is_ok(r));
    assert_string_equal(str(r, "name"), "s2");
    assert_string_equal(str(r, "state"), "paused");
    json_object_put(r);
    r = rpc(f, "{\"op\":\"restore\",\"name\":\"s3\",\"file\":\"%s\"}", file);
    assert_string_equal(str(r, "state"), "running");
    json_object_put(r);

    expect_error(rpc(f, "{\"op\":\"restore\",\"name\":\"s2\",\"file\":\"%s\"}", file), "exists", "s2");
    expect_error(rpc(f, "{\"op\":\"restore\",\"name\":\"s4\",\"file\":\"%s\"}", f->kernel), "invalid",
                 "not an rvisor snapshot");
    expect_error(rpc(f, "{\"op\":\"snapshot\",\"name\":\"s1\",\"file\":\"rel.snap\"}"), "bad_request",
                 "must be an absolute path");
    expect_error(rpc(f, "{\"op\":\"snapshot\",\"name\":\"s1\"}"), "bad_request", "missing field \"file\"");
    expect_error(rpc(f, "{\"op\":\"snapshot\",\"name\":\"s1\",\"file\":\"/x\",\"stop\":1}"), "bad_request",
                 "must be true or false");
    expect_error(rpc(f, "{\"op\":\"snapshot\",\"name\":\"s1\",\"file\":\"/x\",\"direct\":\"yes\"}"), "bad_request",
                 "\"direct\" must be true or false");
    expect_error(rpc(f, "{\"op\":\"restore\",\"name\":\"s5\",\"file\":\"/x\",\"direct\":true}"), "bad_request",
                 "unknown field \"direct\"");
    r = rpc(f, "{\"op\":\"snapshot\",\"name\":\"s3\",\"file\":\"%s\",\"direct\":true}", file);
    assert_true(is_ok(r));
    assert_true(json_object_get_boolean(json_object_object_get(obj(r, "snapshot"), "direct")));
    assert_string_equal(str(r, "state"), "running");
    json_object_put(r);
    expect_error(rpc(f, "{\"op\":\"restore\",\"name\":\"s5\",\"file\":\"/x\",\"stop\":true}"), "bad_request",
                 "unknown field \"stop\"");
    expect_error(rpc(f, "{\"op\":\"snapshot\",\"name\":\"nope\",\"file\":\"/tmp/x\"}"), "not_found", "nope");
}

static void test_cli_snapshot(void **state) {
    struct fixture *f = *state;
    struct captured *c = malloc(sizeof *c);
    create_vm(f, "c1");
    json_object_put(rpc(f, "{\"op\":\"start\",\"name\":\"c1\"}"));
    char cwd[256];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->dir), 0);
    CLI(c, "snapshot", "c1", "rel.snap", "--socket", f->path);
    assert_int_equal(c->status, 0);
    expect_has(c->out, "c1: saved to ");
    expect_has(c->out, "/rel.snap"); /* made absolute for the monitor */
    expect_has(c->out, "now running");
    CLI(c, "snapshot", "c1", "rel.snap", "--direct", "--socket", f->path);
    assert_int_equal(c->status, 0);
    expect_has(c->out, "O_DIRECT");
    CLI(c, "restore", "rel.snap", "--name", "c2", "--paused", "--socket", f->path);
    assert_int_equal(c->status, 0);
    expect_has(c->out, "c2: restored from ");
    expect_has(c->out, "paused");
    CLI(c, "restore", "rel.snap", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "needs --name");
    CLI(c, "restore", "missing.snap", "--name", "c3", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "missing.snap");
    CLI(c, "snapshot", "c1", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "needs the file to write");
    CLI(c, "snapshot", "c1", "x.snap", "--paused", "--socket", f->path);
    assert_int_equal(c->status, 1);
    expect_has(c->err, "does not take --paused");
    CLI(c, "snapshot", "--help");
    expect_has(c->out, "paused only while its state is read");
    assert_int_equal(chdir(cwd), 0);
    free(c);
}

static void test_default_socket(void **state) {
    (void)state;
    char buf[256], *old = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
    setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1);
    client_default_socket(buf, sizeof buf);
    assert_string_equal(buf, "/run/user/1234/rvisor.sock");
    unsetenv("XDG_RUNTIME_DIR");
    client_default_socket(buf, sizeof buf);
    char want[64];
    snprintf(want, sizeof want, "/tmp/rvisor-%u.sock", (unsigned)getuid());
    assert_string_equal(buf, want);
    if (old) setenv("XDG_RUNTIME_DIR", old, 1);
    free(old);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_socket_is_owner_only),
        T(test_socket_file_checks),
        T(test_create_and_stats),
        T(test_engine),
        T(test_lifecycle),
        T(test_list),
        T(test_memory),
        T(test_shutdown),
        T(test_malformed_json),
        T(test_missing_fields),
        T(test_wrong_types),
        T(test_unknown_op_and_field),
        T(test_unknown_vm),
        T(test_duplicate_name),
        T(test_monitor_refuses),
        cmocka_unit_test_setup_teardown(test_memory_exhausted, setup_small, teardown),
        T(test_oversized_line),
        T(test_pipelined_requests),
        T(test_disconnect_mid_request),
        T(test_concurrent_clients),
        T(test_connection_limit),
        T(test_stalled_clients_stall_nobody_else),
        T(test_peer_of_another_uid_is_refused),
        T(test_console_client_limit),
        cmocka_unit_test_setup_teardown(test_vm_limit, setup_few_vms, teardown),
        T(test_console_stream),
        T(test_console_keeps_latest_output),
        T(test_console_ends_when_guest_stops),
        T(test_console_client_closes),
        T(test_console_ends_at_server_close),
        cmocka_unit_test(test_parse_request),
        T(test_cli_commands),
        T(test_cli_errors),
        T(test_cli_console_without_terminal),
        T(test_balloon),
        T(test_cli_balloon),
        T(test_snapshot_ops),
        T(test_cli_snapshot),
        cmocka_unit_test(test_default_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
