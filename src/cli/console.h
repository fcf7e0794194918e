/* The host side of a guest console: the terminal in raw mode (restored on
 * exit), buffered guest output, and QEMU-style escapes (Ctrl-A x quits). */
#ifndef RVISOR_CONSOLE_H
#define RVISOR_CONSOLE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <termios.h>

struct vm;

#define CONSOLE_BUF 4096

struct console {
    int in_fd, out_fd;
    int wake_fd;          /* epoll over input and the stop signals */
    int signal_fd;
    bool raw;             /* terminal settings were changed */
    struct termios saved;
    bool in_eof;
    bool escape;          /* Ctrl-A seen */
    uint8_t in_buf[CONSOLE_BUF];
    size_t in_len;
    pthread_mutex_t out_lock; /* guest output comes from every hart's thread */
    uint8_t out_buf[CONSOLE_BUF];
    size_t out_len;
};

/* Stop signals (SIGINT, SIGTERM, SIGHUP) arrive through a signalfd, so the
 * run loop sees them between slices and restores the terminal on the way
 * out. They must be blocked in every thread: call this before the first
 * thread is made (threads inherit the mask); mask gets the set. */
void console_block_stop_signals(sigset_t *mask);
bool console_open(struct console *c, int in_fd, int out_fd);
void console_close(struct console *c);
/* vm_console.write callback */
void console_write(void *ctx, const uint8_t *buf, size_t n);
void console_flush(struct console *c);
/* vm_io.poll callback: moves host input into the guest, handles escapes and signals. */
void console_poll(void *ctx, struct vm *vm);

#endif
