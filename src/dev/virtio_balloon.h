/* virtio memory balloon (virtio 1.2 section 5.5): device id 5. The host
 * sets a target (num_pages, in 4 KiB pages) in the config space; the guest
 * driver gives pages to the balloon (inflateq: arrays of 32-bit PFNs) until
 * it holds that many, or takes them back (deflateq), and writes how many it
 * holds to `actual`. An inflated page's machine frame goes back to the
 * monitor's pool at once: the guest frame becomes demand-zero again, so a
 * deflated page costs nothing until the guest writes it.
 *
 * Also offered:
 *   STATS_VQ     the guest's memory statistics: the driver keeps one buffer
 *                of (tag, value) records in the stats queue; the device
 *                holds it and hands it back when it wants fresh figures.
 *                That is only when someone asks (virtio_balloon_refresh_stats),
 *                so an idle guest is never woken for them.
 *   DEFLATE_ON_OOM  the guest may take pages back when it runs out of memory.
 *   REPORTING    free page reporting: the guest lists ranges of free memory
 *                it will not touch until the device returns the buffer;
 *                their frames are dropped the same way.
 * Queues are numbered as the drivers do, counting only the ones the
 * negotiated features give: inflateq 0, deflateq 1, statsq 2 (with
 * STATS_VQ), then reporting_vq (3 with STATS_VQ, else 2).
 *
 * Guest input is never trusted: PFNs outside RAM are ignored (and counted),
 * ranges are clipped to RAM and to whole pages, and a buffer the device
 * cannot read breaks the device (DEVICE_NEEDS_RESET), never the VM. */
#ifndef RVISOR_VIRTIO_BALLOON_H
#define RVISOR_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "dev/virtio_backend.h"
#include "dev/virtio_mmio.h"

#define VIRTIO_ID_BALLOON 5
#define VIRTIO_BALLOON_QUEUE_SIZE 128

/* Feature bits (5.5.3). */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON 4
#define VIRTIO_BALLOON_F_REPORTING 5

/* Statistics tags (5.5.6.3); values are bytes except the fault counts. */
enum virtio_balloon_stat {
    VIRTIO_BALLOON_S_SWAP_IN = 0,
    VIRTIO_BALLOON_S_SWAP_OUT = 1,
    VIRTIO_BALLOON_S_MAJFLT = 2,
    VIRTIO_BALLOON_S_MINFLT = 3,
    VIRTIO_BALLOON_S_MEMFREE = 4,
    VIRTIO_BALLOON_S_MEMTOT = 5,
    VIRTIO_BALLOON_S_AVAIL = 6,
    VIRTIO_BALLOON_S_CACHES = 7,
    VIRTIO_BALLOON_S_HTLB_PGALLOC = 8,
    VIRTIO_BALLOON_S_HTLB_PGFAIL = 9,
    VIRTIO_BALLOON_S_NR = 10,
};

struct virtio_balloon;

/* What the device knows, for the monitor. Pages are 4 KiB. */
struct virtio_balloon_info {
    uint32_t target_pages;     /* num_pages: what the balloon should hold */
    uint32_t actual_pages;     /* what the driver says it holds */
    uint64_t inflated_pages;   /* PFNs the guest gave (inflateq), in RAM */
    uint64_t deflated_pages;   /* PFNs it took back (deflateq), in RAM */
    uint64_t ignored_pages;    /* PFNs outside RAM, ignored */
    uint64_t freed_frames;     /* machine frames released by inflation */
    uint64_t reported_bytes;   /* free memory the guest reported (in RAM) */
    uint64_t reported_frames;  /* machine frames released by reporting */
    uint32_t stats_valid;      /* bit per enum virtio_balloon_stat the guest sent */
    uint64_t stats[VIRTIO_BALLOON_S_NR];
    uint64_t stats_updated_ns; /* event_loop_now_ns() of the last update; 0 = never */
};

/* With loop == NULL (unit tests) queue work runs on the notifying thread.
 * ram is where pages are dropped; NULL if it lacks drop_frames or
 * drop_range, or on allocation failure. */
struct virtio_balloon *virtio_balloon_create(struct guest_ram_ops ram, struct event_loop *loop);
void virtio_balloon_destroy(struct virtio_balloon *b);
/* Gives the device its transport (before the guest runs). */
void virtio_balloon_attach(struct virtio_balloon *b, struct virtio_mmio *t);

/* ops->save/load: num_pages, actual and the held stats buffer; a load
 * sets virtio_balloon_info's target_pages and actual_pages to match. */
extern const struct virtio_device_ops virtio_balloon_ops;

/* Any thread, holding no transport or monitor lock (without a loop it
 * takes the transport lock itself). The guest sees the new target through
 * a configuration-change interrupt. */
void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages);
/* Hands the stats buffer back so the guest sends fresh figures. */
void virtio_balloon_request_stats(struct virtio_balloon *b);
/* The same, from any thread holding any locks, if the figures are older
 * than max_age_ns and none was asked for that recently; the answer arrives
 * a little later. Does nothing without an event loop. */
void virtio_balloon_refresh_stats(struct virtio_balloon *b, uint64_t max_age_ns);
/* Any thread; takes only the device's own info lock. */
void virtio_balloon_get_info(struct virtio_balloon *b, struct virtio_balloon_info *out);

/* virtio_backend_create_fn: takes no options; needs env->ram. */
bool virtio_balloon_backend_create(const char *opts, const struct virtio_backend_env *env, struct virtio_backend *out,
                                   char *err, size_t errlen);

#endif
