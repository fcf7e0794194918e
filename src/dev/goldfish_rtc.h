/* The Goldfish RTC of QEMU's virt board ("google,goldfish-rtc"): a 64-bit
 * nanosecond wall clock with one alarm. The clock is host CLOCK_REALTIME
 * plus an offset the guest sets by writing TIME_HIGH then TIME_LOW, so a
 * guest that sets its clock does not disturb the host's.
 *
 * Thread safe; the irq line is driven with the RTC's lock held. */
#ifndef RVISOR_GOLDFISH_RTC_H
#define RVISOR_GOLDFISH_RTC_H

#include <stdbool.h>
#include <stddef.h>

#include "dev/irq.h"
#include "dev/mmio.h"

#define GOLDFISH_RTC_SIZE 0x1000

struct goldfish_rtc;

struct goldfish_rtc *goldfish_rtc_create(struct irq_line irq);
void goldfish_rtc_destroy(struct goldfish_rtc *r);

/* Fires the alarm if its time has come; call it periodically (alarms have
 * second granularity in Linux, so a coarse period is enough). */
void goldfish_rtc_update(struct goldfish_rtc *r);

extern const struct mmio_ops goldfish_rtc_mmio_ops;

struct snap_writer;
struct snap_section;
/* Saved state: section "rtc", version 1 (see goldfish_rtc.c's table). The
 * guest's time is saved, not its offset from the host's, so after a load
 * the guest clock continues from the saved value. Load refuses a bad
 * section, leaving the RTC as it was. */
bool goldfish_rtc_save(struct goldfish_rtc *r, struct snap_writer *w);
bool goldfish_rtc_load(struct goldfish_rtc *r, const struct snap_section *s, char *err, size_t errlen);

#endif
