#include "cli/console.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "vm/vm.h"

#define CTRL_A 0x01

void console_block_stop_signals(sigset_t *mask) {
    sigemptyset(mask);
    sigaddset(mask, SIGINT);
    sigaddset(mask, SIGTERM);
    sigaddset(mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, mask, NULL);
}

bool console_open(struct console *c, int in_fd, int out_fd) {
    memset(c, 0, sizeof *c);
    c->in_fd = in_fd;
    c->out_fd = out_fd;
    pthread_mutex_init(&c->out_lock, NULL);
    sigset_t mask;
    console_block_stop_signals(&mask);
    c->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    c->wake_fd = epoll_create1(EPOLL_CLOEXEC);
    if (c->signal_fd < 0 || c->wake_fd < 0) return false;
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(c->wake_fd, EPOLL_CTL_ADD, c->signal_fd, &ev);
    /* Regular files and /dev/null cannot be in an epoll set; they never block anyway. */
    epoll_ctl(c->wake_fd, EPOLL_CTL_ADD, in_fd, &ev);
    if (isatty(in_fd) && tcgetattr(in_fd, &c->saved) == 0) {
        struct termios raw = c->saved;
        cfmakeraw(&raw);
        raw.c_oflag |= OPOST | ONLCR; /* keep the host's own messages readable */
        if (tcsetattr(in_fd, TCSANOW, &raw) == 0) c->raw = true;
    }
    return true;
}

static void flush_locked(struct console *c) {
    size_t done = 0;
    while (done < c->out_len) {
        ssize_t n = write(c->out_fd, c->out_buf + done, c->out_len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* output gone: drop it rather than stall the guest */
        done += (size_t)n;
    }
    c->out_len = 0;
}

void console_flush(struct console *c) {
    pthread_mutex_lock(&c->out_lock);
    flush_locked(c);
    pthread_mutex_unlock(&c->out_lock);
}

void console_close(struct console *c) {
    console_flush(c);
    if (c->raw) tcsetattr(c->in_fd, TCSANOW, &c->saved);
    if (c->wake_fd >= 0) close(c->wake_fd);
    if (c->signal_fd >= 0) close(c->signal_fd);
    c->raw = false;
    pthread_mutex_destroy(&c->out_lock);
}

void console_write(void *ctx, const uint8_t *buf, size_t n) {
    struct console *c = ctx;
    pthread_mutex_lock(&c->out_lock);
    while (n) {
        size_t room = CONSOLE_BUF - c->out_len;
        size_t k = n < room ? n : room;
        memcpy(c->out_buf + c->out_len, buf, k);
        c->out_len += k;
        buf += k;
        n -= k;
        if (c->out_len == CONSOLE_BUF) flush_locked(c);
    }
    pthread_mutex_unlock(&c->out_lock);
}

static void host_message(struct console *c, const char *msg) {
    console_flush(c);
    if (write(c->out_fd, msg, strlen(msg)) < 0) { /* nothing to do */ }
}

/* Interprets Ctrl-A escapes; returns false for bytes that are not passed on. */
static bool filter_byte(struct console *c, struct vm *vm, uint8_t b) {
    if (!c->escape) {
        if (b == CTRL_A && c->raw) {
            c->escape = true;
            return false;
        }
        return true;
    }
    c->escape = false;
    switch (b) {
    case 'x': case 'X':
        vm_request_exit(vm, VM_EXIT_QUIT, 0, "stopped by the user");
        return false;
    case 'h': case 'H': case '?':
        host_message(c, "\r\nC-a h    this help\r\nC-a x    quit rvisor\r\nC-a C-a  send C-a to the guest\r\n");
        return false;
    case CTRL_A: return true;
    }
    return false;
}

static void read_input(struct console *c, struct vm *vm) {
    if (c->in_eof || c->in_len == CONSOLE_BUF) return;
    uint8_t buf[CONSOLE_BUF];
    ssize_t n = read(c->in_fd, buf, CONSOLE_BUF - c->in_len);
    if (n == 0) {
        c->in_eof = true;
        epoll_ctl(c->wake_fd, EPOLL_CTL_DEL, c->in_fd, NULL);
        return;
    }
    if (n < 0) return;
    for (ssize_t i = 0; i < n; i++)
        if (filter_byte(c, vm, buf[i])) c->in_buf[c->in_len++] = buf[i];
}

void console_poll(void *ctx, struct vm *vm) {
    struct console *c = ctx;
    console_flush(c);
    struct signalfd_siginfo si;
    if (read(c->signal_fd, &si, sizeof si) == sizeof si)
        vm_request_exit(vm, VM_EXIT_QUIT, 0, "stopped by signal %u", si.ssi_signo);
    /* Read only when input is waiting: the descriptor stays blocking, as the terminal expects. */
    struct pollfd p = {.fd = c->in_fd, .events = POLLIN};
    if (!c->in_eof && poll(&p, 1, 0) > 0) read_input(c, vm);
    if (c->in_len) {
        size_t k = vm_console_input(vm, c->in_buf, c->in_len);
        memmove(c->in_buf, c->in_buf + k, c->in_len - k);
        c->in_len -= k;
    }
}
