/* The host side of a virtual network card: something that carries Ethernet
 * frames between the card and the host (a TAP device, or libslirp's
 * user-mode stack). The card sends frames with ops->send; the backend hands
 * frames it receives to the card through a net_peer.
 *
 * Threading: everything here runs on the event loop's thread, which is
 * where the card processes its queues too. Flow control is one bit wide:
 * when peer.deliver returns false the card is out of receive buffers, and
 * the backend takes nothing more from the host (it may still deliver what
 * it already holds; the card queues or drops it) until ops->resume. */
#ifndef RVISOR_NET_BACKEND_H
#define RVISOR_NET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_loop;

/* Largest frame either way: a 65535-byte MTU, an Ethernet and a VLAN header. */
#define NET_MAX_FRAME (65535 + 14 + 4)

/* The card's receive side. */
struct net_peer {
    /* One frame for the guest. Returns false if the card can take no more
     * for now (the frame itself was queued or dropped). */
    bool (*deliver)(void *ctx, const uint8_t *frame, size_t len);
    void *ctx;
};

struct net_backend_ops {
    /* One frame from the guest. A frame the host cannot take now is
     * dropped, as on a wire. */
    void (*send)(void *be, const uint8_t *frame, size_t len);
    /* The card has receive buffers again after deliver returned false. */
    void (*resume)(void *be);
    /* Stops the backend's loop work and frees it. */
    void (*destroy)(void *be);
};

struct net_backend {
    const struct net_backend_ops *ops;
    void *be;
    /* Every frame it delivers carries correct TCP/UDP checksums (it made
     * them itself, as libslirp does): the guest may skip verifying them. */
    bool rx_checksums_valid;
};

/* A port forward of the user-mode stack: connections to the host's
 * host_addr:host_port go to guest_addr:guest_port (IPv4, network order). */
struct slirp_hostfwd {
    bool udp;
    uint32_t host_addr, guest_addr;
    uint16_t host_port, guest_port;
};

#define SLIRP_MAX_HOSTFWDS 16

/* Parses QEMU's syntax [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT
 * (empty HOSTADDR: every host address; empty GUESTADDR: the address DHCP
 * gives the guest, 10.0.2.15). False with a message. */
bool slirp_hostfwd_parse(const char *spec, struct slirp_hostfwd *out, char *err, size_t errlen);

/* User-mode networking: network 10.0.2.0/24, the host (and its loopback)
 * at 10.0.2.2, DNS at 10.0.2.3, DHCP from 10.0.2.15. */
bool slirp_backend_create(struct event_loop *loop, const struct slirp_hostfwd *fwd, unsigned nfwd,
                          struct net_peer peer, struct net_backend *out, char *err, size_t errlen);

/* A TAP device: attaches to ifname, creating it if it does not exist
 * (which needs CAP_NET_ADMIN); the host configures its address. */
bool tap_backend_create(struct event_loop *loop, const char *ifname, struct net_peer peer,
                        struct net_backend *out, char *err, size_t errlen);

#endif
