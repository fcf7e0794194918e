/* virtio network card (virtio 1.2 section 5.1): device id 1, queue 0
 * receives, queue 1 transmits; config space holds the MAC address and the
 * link status (always up). No offloads are offered, so every buffer starts
 * with the 12-byte struct virtio_net_hdr of VERSION_1 and carries exactly
 * one Ethernet frame; without MRG_RXBUF each received frame must fit one
 * receive chain (frames that do not are dropped).
 *
 * The host side is a struct net_backend (src/net/). Queue work happens on
 * the event loop's thread: the vCPU's notify only signals a notifier.
 * Frames arriving while the guest has no receive buffers wait in a short
 * queue (the backend is told to hold back); beyond it they are dropped. */
#ifndef RVISOR_VIRTIO_NET_H
#define RVISOR_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/virtio_backend.h"
#include "dev/virtio_mmio.h"
#include "net/net_backend.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_NET_QUEUE_SIZE 256
#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1

#define VIRTIO_NET_F_CSUM 0       /* the driver may leave a checksum to the device */
#define VIRTIO_NET_F_GUEST_CSUM 1 /* the device may say a checksum was verified */
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_HOST_TSO4 11 /* the driver may send TCP/IPv4 segments up to 64 KiB */
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1

#define VIRTIO_NET_HDR_LEN 12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_ECN 0x80
/* Frames waiting for receive buffers; more are dropped. */
#define VIRTIO_NET_RX_PENDING 128
/* Transmit chains taken per wakeup before letting the loop do other work. */
#define VIRTIO_NET_TX_BATCH 256

struct event_loop;
struct virtio_net;

/* A card with the given MAC; queue work on loop (NULL: synchronously on
 * the notifying thread, for tests: the backend's send is then called with
 * the transport lock held and must not deliver frames from inside it). */
struct virtio_net *virtio_net_create(struct event_loop *loop, const uint8_t mac[6]);
/* Gives the card its host side (the card destroys it). */
void virtio_net_set_backend(struct virtio_net *n, struct net_backend b);
/* The peer a backend delivers received frames to. */
struct net_peer virtio_net_peer(struct virtio_net *n);
void virtio_net_attach(struct virtio_net *n, struct virtio_mmio *t);
/* Stops the backend and the card's loop work, then frees. */
void virtio_net_destroy(struct virtio_net *n);

/* ops->save/load: the config space (MAC, status); waiting frames are dropped. */
extern const struct virtio_device_ops virtio_net_ops;

/* Parses an option string for a MAC: "52:54:00:12:34:56" (unicast, not
 * all zeros). */
bool virtio_net_parse_mac(const char *s, uint8_t mac[6]);

/* virtio_backend_create_fn. opts: user[,hostfwd=FWD]...[,mac=MAC] or
 * tap=IFNAME[,mac=MAC]; FWD is [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT.
 * Without mac= the card gets a random locally administered 52:54:00:xx:xx:xx. */
bool virtio_net_backend_create(const char *opts, const struct virtio_backend_env *env, struct virtio_backend *out,
                               char *err, size_t errlen);

#endif
