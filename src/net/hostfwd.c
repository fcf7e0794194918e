/* Parsing of user-mode networking port forwards (QEMU's hostfwd= syntax). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_backend.h"

#define HOSTFWD_SYNTAX "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"

/* "ADDR:PORT" with ADDR possibly empty (0); false if malformed. */
static bool addr_port(const char *s, size_t n, uint32_t *addr, uint16_t *port) {
    const char *colon = memchr(s, ':', n);
    if (!colon || memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) return false;
    size_t alen = (size_t)(colon - s), plen = n - alen - 1;
    char buf[64];
    *addr = 0;
    if (alen) {
        if (alen >= sizeof buf) return false;
        memcpy(buf, s, alen);
        buf[alen] = 0;
        struct in_addr a;
        if (inet_pton(AF_INET, buf, &a) != 1) return false;
        *addr = a.s_addr;
    }
    if (plen == 0 || plen > 5) return false;
    unsigned v = 0;
    for (size_t i = 0; i < plen; i++) {
        char c = colon[1 + i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (unsigned)(c - '0');
    }
    if (v == 0 || v > 65535) return false;
    *port = (uint16_t)v;
    return true;
}

bool slirp_hostfwd_parse(const char *spec, struct slirp_hostfwd *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    const char *p = spec;
    const char *colon = strchr(p, ':');
    if (!colon) goto bad;
    size_t plen = (size_t)(colon - p);
    if (plen == 3 && !strncmp(p, "udp", 3))
        out->udp = true;
    else if (!(plen == 0 || (plen == 3 && !strncmp(p, "tcp", 3))))
        goto bad;
    p = colon + 1;
    const char *dash = strchr(p, '-');
    if (!dash || strchr(dash + 1, '-')) goto bad;
    if (!addr_port(p, (size_t)(dash - p), &out->host_addr, &out->host_port)) goto bad;
    if (!addr_port(dash + 1, strlen(dash + 1), &out->guest_addr, &out->guest_port)) goto bad;
    return true;
bad:
    snprintf(err, errlen, "bad hostfwd '%s' (expected %s, ports 1-65535)", spec, HOSTFWD_SYNTAX);
    return false;
}
