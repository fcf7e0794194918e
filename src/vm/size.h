/* Sizes of memory as the command line and the API take them (--mem, the
 * API's "mem", ...): one syntax for both, so it lives with the rest of the
 * VM's configuration vocabulary rather than in either. */
#ifndef RVISOR_SIZE_H
#define RVISOR_SIZE_H

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* Parses "256", "256M", "1G", "65536K" (a bare number is MiB; "MiB" and
 * "MB" mean M too). False for anything else or more than 64 bits hold. */
static inline bool parse_size(const char *s, uint64_t *bytes) {
    if (!s || !isdigit((unsigned char)*s)) return false;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno) return false;
    uint64_t unit = 1ull << 20;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'K': unit = 1ull << 10; break;
        case 'M': unit = 1ull << 20; break;
        case 'G': unit = 1ull << 30; break;
        default: return false;
        }
        end++;
        if (toupper((unsigned char)*end) == 'I') end++;
        if (toupper((unsigned char)*end) == 'B') end++;
        if (*end) return false;
    }
    if (n > UINT64_MAX / unit) return false;
    *bytes = n * unit;
    return true;
}

#endif
