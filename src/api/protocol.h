/* The control protocol: JSON requests to a running monitor, and their replies.
 *
 * Transport (see api/server.h): a Unix stream socket. Each request is one JSON
 * object on one line (ended by '\n'; a trailing '\r' is ignored), at most
 * API_MAX_REQUEST bytes; each reply is one JSON object on one line. Requests
 * on a connection are answered in order. Blank lines are ignored. Only the
 * monitor's uid and root are served; the server's limits (connections,
 * console clients, timeouts) are in api/server.h, the number of VMs in
 * monitor/monitor.h (MONITOR_MAX_VMS).
 *
 * Requests ("op" is required; any field not listed for an op is an error):
 *
 *   {"op": "create", "name": "vm1", "kernel": "/path/Image", "initrd": "/path/initrd.gz",
 *    "append": "console=ttyS0", "mem": "256M", "cpus": 1, "shares": 1000, "cap": 0,
 *    "bios": null, "drives": ["file=/path/disk.img,readonly=on"], "nets": ["user"],
 *    "console": "uart", "balloon": true, "engine": "jit", "jit_cache": "32M",
 *    "share_group": "web"}
 *       name    required: 1..63 characters of [A-Za-z0-9_.-]
 *       kernel  Linux Image; kernel or bios is required. initrd needs kernel.
 *               Paths are opened by the monitor: give absolute ones. Kernel,
 *               initrd and bios must be regular files no larger than mem,
 *               drives regular files or block devices; anything else (a
 *               FIFO, a device, a directory, a /proc file) is refused at
 *               once with "invalid" (io/host_file.h).
 *       append  kernel command line (default "console=ttyS0")
 *       mem     guest RAM: a string as `rvisor run --mem` takes ("256", "256M",
 *               "1G"; a bare number is MiB) or an integer number of bytes;
 *               default 256M, at least 1 MiB, rounded up to 4 KiB
 *       cpus    1..VM_MAX_HARTS (default 1)
 *       shares  proportional CPU share, 1..100000 (default 1000)
 *       cap     0 (no cap, the default) or at most this percent of one host core, 1..100
 *       bios    M-mode firmware, or null / absent
 *       drives  up to VM_MAX_DRIVES virtio-blk disks, as `rvisor run --drive` takes them
 *       nets    up to VM_MAX_NETS virtio-net cards, as `rvisor run --net` takes them
 *       console "uart" (ttyS0, the default) or "virtio" (hvc0; append then defaults
 *               to "console=hvc0")
 *       balloon false leaves out virtio-balloon (default true)
 *       engine  "jit" (the binary translator; the default where the host has
 *               one) or "interp" (the interpreter); anything else is refused
 *       jit_cache translated-code buffer per hart, a size as "mem" takes,
 *               1M to 4G (default 32M); ignored with "interp"
 *     Any of initrd, append, bios, engine, jit_cache may be null (= absent).
 *   {"op": "start"|"pause"|"resume"|"stop"|"destroy"|"stats", "name": "vm1"}
 *   {"op": "console", "name": "vm1"}
 *       After the ok reply the connection is a raw byte stream both ways:
 *       the guest's console output, starting from the oldest output the
 *       monitor keeps, goes to the client (polled every ~20 ms); bytes from
 *       the client go to the guest's UART. It ends when the client closes
 *       (or half-closes) its side, when the VM is destroyed, or when the VM
 *       is stopped (after all of its output has been sent).
 *   {"op": "balloon", "name": "vm1", "target": "128M"}
 *       Sets the VM's virtio-balloon so that the guest keeps `target` of its RAM
 *       (QEMU's `balloon` command: the guest's memory becomes target, the
 *       balloon holds the rest; a target of at least its RAM deflates it fully).
 *       target: a size string as "mem" takes, or an integer number of bytes;
 *       at least 1 MiB. The guest's driver gets there in its own time: watch
 *       "balloon"."actual" in stats. Fails with "invalid" if the VM has no
 *       balloon, "bad_state" if it is stopped.
 *   {"op": "snapshot", "name": "vm1", "file": "/path/vm1.snap", "stop": false, "direct": false}
 *       Saves the VM's state (harts, devices, the memory it wrote) into file,
 *       an absolute path the monitor writes, crash-safely: the file appears
 *       complete or not at all, and an older file at that path stays intact
 *       until then. The VM must be running or paused; a running VM is
 *       paused only while its state is read (reply: "pause_ns"), then runs
 *       on, unless "stop" is true. "direct": write guest memory with O_DIRECT
 *       (around the host's page cache: a big snapshot neither fills nor
 *       evicts it; a restore then reads the file from the disk), where the
 *       file system allows. Reply: VM_INFO plus "snapshot": {"file",
 *       "bytes", "frames", "pause_ns", "direct" (whether O_DIRECT was used),
 *       "total_ns"}.
 *   {"op": "restore", "name": "vm2", "file": "/path/vm1.snap", "paused": false}
 *       Creates VM name from a snapshot, running (or paused) where it was
 *       saved: same memory, harts and devices, its clock going on from the
 *       saved time. Disks are reopened from the paths the VM was created
 *       with and must have the saved sizes; a user-mode network card starts
 *       afresh (the guest's open connections may reset). A damaged,
 *       truncated, foreign or newer-format file is refused with "invalid"
 *       and nothing is created. One snapshot may be restored many times, as
 *       independent VMs. Reply: VM_INFO plus "snapshot": {"file", "bytes",
 *       "total_ns"}.
 *   {"op": "migrate", "name": "vm1", "uri": "tcp:10.0.0.2:4444", "downtime_ms": 300}
 *       Moves the VM, running, to the monitor started with `--incoming
 *       tcp:ADDR:PORT` there (pre-copy: memory is sent while it runs, then
 *       what it rewrote, until the rest fits in downtime_ms, 1..60000,
 *       default 300 as in QEMU; a VM that dirties memory faster than the link
 *       carries it is slowed with a CPU cap). On success the VM exists only
 *       on the target, under its name: reply {"ok": true, "name",
 *       "migration": {"uri", "total_ns", "downtime_ns", "bytes", "frames",
 *       "rounds", "throttled"}}. On any failure (target unreachable or
 *       refusing, connection lost) it runs on here: "invalid" with the reason.
 *   {"op": "list"}  {"op": "memory"}  {"op": "shutdown"}
 *
 * Replies:
 *   {"ok": false, "error": "message", "code": CODE}   on any failure, where CODE is
 *       "bad_request"  malformed JSON, not an object, missing or unknown field, wrong type
 *       "too_large"    the request line is longer than API_MAX_REQUEST bytes
 *       "incomplete"   the connection was closed in the middle of a request line
 *       "not_found"    no VM of that name
 *       "exists"       a VM of that name exists already
 *       "invalid"      the monitor refused an argument (unreadable kernel, ...)
 *       "no_memory"    machine memory is exhausted
 *       "bad_state"    not possible in the VM's current state
 *       "busy"         a limit was reached: connections (API_MAX_CONNECTIONS; the
 *                      connection is then closed), console clients
 *                      (API_MAX_CONSOLE_CLIENTS) or VMs (MONITOR_MAX_VMS)
 *       "denied"       the peer's uid is neither the monitor's nor root; the
 *                      connection is closed
 *       "timeout"      a request was not finished within API_REQUEST_TIMEOUT_MS of
 *                      its first byte; the connection is closed
 *       "error"        the monitor itself failed (out of host memory)
 *   {"ok": true, VM_INFO...}  for create, start, pause, resume, stop, balloon and stats
 *       (the VM after the operation), where VM_INFO is the fields of struct vm_info:
 *       "name", "state" ("created"|"running"|"paused"|"stopped"), "cpus",
 *       "shares", "cap_percent", "mem_size", "mem_backed" (bytes), "cpu_ns",
 *       "instructions", "exit_status", "exit_message", and "counts": an object of
 *       event totals since creation, summed over its harts: "mem_ops" (loads and
 *       stores), "tlb_misses" (software-TLB lookups that took the slow path),
 *       "sbi_calls", "mmio", "wfi", "exceptions", "interrupts"; and "balloon": null
 *       (no balloon device) or an object, all sizes in bytes:
 *         "target"    the memory the guest is asked to keep
 *         "actual"    the memory it keeps now (RAM minus what its balloon holds)
 *         "size"      what the balloon holds now
 *         "freed"     machine memory released by inflating, in total
 *         "reported"  machine memory released by free page reporting, in total
 *         "stats"     null until the guest sent any, else the guest's own figures:
 *                     "age_ms" (since it sent them) and those of "free", "total",
 *                     "available", "caches", "major_faults", "minor_faults" (counts),
 *                     "swap_in", "swap_out" it reported. Guests are asked for fresh
 *                     figures only when someone looks: the stats op waits up to
 *                     0.25 s for figures under a second old.
 *       And "engine": "jit" or "interp", and "jit": null (interp) or the
 *       translator's counters since creation, summed over its harts:
 *         "translated_blocks"        blocks translated
 *         "translated_instructions"  guest instructions translated into them
 *         "code_bytes"               host code in the code buffers now
 *         "flushes"                  times a code buffer filled and was emptied
 *         "translate_ns"             host time spent translating
 *         "dispatches"               returns from translated code to the
 *                                    translator's dispatcher
 *       And "share_group": the VM's share group (null: its own), and
 *       "pages": its guest frames by how they are held: "backed" (a machine
 *       frame of its own), "shared" (mapping a shared frame), "zero" (read
 *       the zero frame), "zero_merged" (found zero by the scanner, given
 *       back, in total), "cow_breaks" (writes that copied a shared frame),
 *       "swapped" (in its swap file now), "swap_outs" and "swap_ins"
 *       (written out and read back, in total), "dma_waits" (device copies
 *       to or from its memory that waited for a frame, in total). "alloc": share-based
 *       allocation: "min" (bytes guaranteed), "shares" (memory shares),
 *       "active_percent" (estimated memory in active use, -1 before the
 *       first sample), "target" (bytes the policy lets it hold), "balloon"
 *       (bytes the policy asks its balloon to hold).
 *   {"ok": true, "name": "vm1"}                       for destroy and console
 *   {"ok": true, "vms": [VM_INFO, ...]}               for list (sorted by name)
 *   {"ok": true, "total": BYTES, "free": BYTES, "used": BYTES,      for memory
 *    "sharing": {"enabled", "rate" (frames hashed per second at most),
 *      "scanned" (frames hashed), "merged" (frames merged into a shared
 *      frame), "zero_merged" (zero frames given back), "cancelled" (merges
 *      a guest write cancelled), "different" (hash matches whose contents
 *      differed), "shared_frames" (machine frames shared now),
 *      "sharing_pages" (guest frames mapping them), "saved_bytes",
 *      "cow_breaks" (writes that copied a shared frame, all VMs),
 *      "scan_cpu_ns" (host CPU the scanner used)},
 *    "swap": {"enabled", "state" (reclamation: "high", "soft", "hard" or
 *      "low", by free machine memory: 6%, 4%, 2%, under 2%), "swapped"
 *      (guest frames in swap files now), "swap_outs", "swap_ins" (in
 *      total), "cancelled" (swap-outs a guest write cancelled), "errors"
 *      (failed swap-file writes), "waiting" (harts waiting for a machine
 *      frame now), "cpu_ns" (host CPU the reclaimer used)}}
 *   {"ok": true}                                      for shutdown (the monitor
 *       then stops serving, stops every VM and exits)
 */
#ifndef RVISOR_API_PROTOCOL_H
#define RVISOR_API_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

#include "monitor/monitor.h"

#define API_MAX_REQUEST 65536 /* bytes in one request line, without its '\n' */

struct json_object;

enum api_op {
    API_OP_CREATE,
    API_OP_START,
    API_OP_PAUSE,
    API_OP_RESUME,
    API_OP_STOP,
    API_OP_DESTROY,
    API_OP_STATS,
    API_OP_CONSOLE,
    API_OP_LIST,
    API_OP_MEMORY,
    API_OP_SHUTDOWN,
    API_OP_BALLOON,
    API_OP_SNAPSHOT,
    API_OP_RESTORE,
    API_OP_MIGRATE,
};

struct api_request {
    enum api_op op;
    char name[VM_NAME_MAX + 1];  /* ops on one VM */
    struct vm_spec spec;         /* create: its strings point into root */
    uint64_t balloon_target;     /* balloon: bytes */
    const char *file;            /* snapshot, restore: the snapshot file (points into root) */
    bool stop, paused;           /* snapshot: leave the VM paused; restore: create it paused */
    bool direct;                 /* snapshot: memory around the host's page cache */
    const char *uri;             /* migrate: "tcp:HOST:PORT" (points into root) */
    unsigned downtime_ms;        /* migrate: 0 = the default */
    struct json_object *root;    /* the parsed request; owned */
};

/* What the connection does after the reply has been sent. */
enum api_after {
    API_AFTER_NONE,
    API_AFTER_CONSOLE,   /* stream the console of the VM named in the request */
    API_AFTER_SHUTDOWN,  /* stop the server */
};

/* Parses and checks one request line (len bytes, no newline). On failure
 * returns false with a message in err; req then needs no freeing. */
bool api_parse_request(const char *line, size_t len, struct api_request *req, char *err, size_t errlen);
void api_request_free(struct api_request *req);

/* Parses a request line and carries it out on the monitor. Returns the reply
 * as a malloc'd, newline-terminated string; *after says what to do next, and
 * for API_AFTER_CONSOLE, name receives the VM's name. */
char *api_handle_line(struct monitor *m, const char *line, size_t len, enum api_after *after,
                      char name[VM_NAME_MAX + 1]);

/* An error reply, malloc'd and newline-terminated. */
char *api_error_reply(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The "code" string of a monitor error (enum monitor_error, positive). */
const char *api_error_code(int monitor_error);
/* "created", "running", "paused", "stopped". */
const char *api_state_name(enum vm_run_state s);
/* Adds the fields of info to obj. */
void api_info_to_json(const struct vm_info *info, struct json_object *obj);

/* True if s is a valid VM name: 1..VM_NAME_MAX characters of [A-Za-z0-9_.-]. */
bool api_valid_name(const char *s);

#endif
