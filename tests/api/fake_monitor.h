/* A stand-in for src/monitor/monitor.c in the API tests: the interface of
 * monitor/monitor.h over a table of pretend VMs that run no code, plus hooks
 * for the tests to play the guest's side of the console. */
#ifndef RVISOR_FAKE_MONITOR_H
#define RVISOR_FAKE_MONITOR_H

#include <stdbool.h>
#include <stddef.h>

#include "monitor/monitor.h"

/* Each pretend VM takes this much machine memory when created. */
#define FAKE_VM_FOOTPRINT (16ull << 20)

/* Appends guest output to a VM's console ring. */
void fake_console_output(struct monitor *m, const char *name, const void *buf, size_t len);
/* Takes up to len bytes of the input queued for a VM's guest. */
size_t fake_console_input(struct monitor *m, const char *name, void *buf, size_t len);
/* The "jit_cache" the VM was created with, in bytes (0: the default or no such VM). */
uint64_t fake_jit_cache(struct monitor *m, const char *name);
/* The guest exits by itself (powers off, panics...). */
void fake_guest_exit(struct monitor *m, const char *name, int status, const char *message);

#endif
