/* Confinement of the rvisor process once it is set up (README.md,
 * "Confinement"): no_new_privs, no capabilities, and a seccomp-bpf filter
 * that allows only the system calls `rvisor run` and `rvisor serve` make
 * from then on, with their arguments restricted where that matters.
 *
 * Anything else is trapped: a SIGSYS handler writes
 *   rvisor: sandbox: forbidden system call NAME (nr N)
 * to standard error and the process exits with SANDBOX_EXIT_STATUS. The
 * filter covers every thread the process has (TSYNC) and will have. */
#ifndef RVISOR_SANDBOX_H
#define RVISOR_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

/* EX_SOFTWARE: distinct from the guest's exit statuses (0 to 6). */
#define SANDBOX_EXIT_STATUS 70

struct sandbox_policy {
    /* socket(AF_INET/AF_INET6) for stream and datagram sockets: libslirp
     * turns the guest's connections (and pings) into host sockets at run
     * time. Off, no socket can be made at all. */
    bool inet;
    /* VMs are made after the filter (rvisor serve): kernel, initrd and
     * disks are opened then (read-write for disks), disks flock'ed, a TAP
     * device attached (TUNSETIFF), eventfds created, the socket file
     * removed on exit. Off, files may only be opened read-only. */
    bool late_setup;
    /* Files may be created (O_CREAT, write-only or appending, never
     * truncated): the translator's RVISOR_PERF_MAP file, which serve opens
     * for each VM it makes. */
    bool create_files;
    /* Unnamed temporary files may be made read-write (O_TMPFILE, nothing
     * else): hypervisor swap files, which serve makes for each VM. A file
     * without a name cannot clobber anything. */
    bool swap_files;
    /* Snapshot files may be written: a new file created exclusively
     * (O_CREAT|O_EXCL, write-only, never truncating an existing one),
     * synced, and renamed over the snapshot's path (serve's snapshot op). */
    bool snapshot_files;
};

struct sandbox;

/* Allocates what the SIGSYS handler will need (the table of system call
 * names); NULL with a message in err if that fails. */
struct sandbox *sandbox_new(char *err, size_t errlen);

/* Drops every capability, sets no_new_privs, installs the SIGSYS handler
 * and loads the filter for every thread. sb must stay allocated while the
 * filter may trap, i.e. until sandbox_free. False with a message in err if
 * any step failed; the process may then be partly confined. */
bool sandbox_enter(struct sandbox *sb, const struct sandbox_policy *p, char *err, size_t errlen);

/* Frees the table; a call trapped after this is reported by number only. */
void sandbox_free(struct sandbox *sb);

/* Sanitizer runtimes make system calls of their own (LeakSanitizer stops
 * the world with ptrace from a cloned tracer), so builds with them get a
 * filter that also allows those: true in such a build. */
bool sandbox_relaxed_for_sanitizers(void);

#endif
