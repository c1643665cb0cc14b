// Linux system calls the WireGuard device needs that Swift cannot call
// directly or conveniently, imported only by the Mesh module:
//   - recvmmsg/sendmmsg (declared only under _GNU_SOURCE, and their
//     struct mmsghdr arrays are easier to build in C), for batched UDP I/O;
//   - TUNSETIFF, a function-like ioctl macro Swift cannot expand;
//   - sockaddr conversion to and from plain (family, bytes, port) triples.
#ifndef TETHER_CMESHLINUX_H
#define TETHER_CMESHLINUX_H

#include <stddef.h>
#include <stdint.h>

/// Opens /dev/net/tun as a layer-3 TUN without packet information headers
/// (IFF_TUN | IFF_NO_PI), named `name` (the kernel's name is copied back
/// into `actual`, at least 16 bytes). Returns the fd or -errno.
int tether_tun_open(const char *name, char *actual);

/// Like tether_tun_open, but with IFF_VNET_HDR and TCP segmentation offload
/// (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6): every packet read or written is
/// preceded by a 10-byte virtio_net_hdr, and reads may return TCP segments
/// of up to 64 KiB that the reader must split. Returns the fd or -errno.
int tether_tun_open_offload(const char *name, char *actual);

/// Writes a 10-byte all-zero virtio_net_hdr then `packet`, with one writev.
long tether_tun_write_vnet(int fd, const void *packet, size_t length);

/// An address as plain values: family 4 or 6, 16 address bytes (IPv4 in the
/// first 4), port in host order.
typedef struct {
    int family;
    uint8_t address[16];
    uint16_t port;
} tether_endpoint;

/// A UDP socket bound to `port` (0 = any) on all addresses: IPv6 dual-stack
/// when available, else IPv4. Returns the fd or -errno; the bound port is
/// written to `bound_port`.
int tether_udp_open(uint16_t port, uint16_t *bound_port);

/// Receives up to `count` datagrams with one recvmmsg. Datagram i goes to
/// `base + i * stride + offset`, at most `capacity` bytes; its length and
/// source are written to `lengths[i]` and `sources[i]`. Waits at most
/// `timeout_ms` for the first. With UDP GRO on (tether_udp_enable_gro), a
/// slot may hold several datagrams from one source coalesced by the kernel:
/// `segment_sizes[i]` is then their size (the last may be shorter), else 0.
/// Returns the number of slots filled, 0 on timeout, or -errno.
int tether_udp_recv_batch(int fd, uint8_t *base, size_t stride, size_t offset, size_t capacity, unsigned count,
                          uint32_t *lengths, uint16_t *segment_sizes, tether_endpoint *sources, int timeout_ms);

/// Asks the kernel to coalesce received datagrams (UDP_GRO). 0 or -errno.
int tether_udp_enable_gro(int fd);

/// Sends `count` datagrams with sendmmsg (retrying the rest after a partial
/// send). Datagram i is `pointers[i]` of `lengths[i]` bytes to
/// `destinations[i]`. Returns the number sent or -errno.
int tether_udp_send_batch(int fd, const uint8_t *const *pointers, const uint32_t *lengths,
                          const tether_endpoint *destinations, unsigned count);

/// Sends `length` bytes holding datagrams of `segment_size` bytes each (the
/// last may be shorter) to one destination with a single sendmsg, letting
/// the kernel split them (UDP generic segmentation offload, UDP_SEGMENT).
/// Returns 0 on success, -errno on failure (-EIO/-EINVAL/-ENOPROTOOPT mean
/// the path cannot offload: send them one by one instead).
int tether_udp_send_gso(int fd, const uint8_t *buffer, size_t length, uint16_t segment_size,
                        const tether_endpoint *destination);

/// Waits up to `timeout_ms` for `fd` to be readable: 1 readable, 0 timeout, -errno.
int tether_wait_readable(int fd, int timeout_ms);

/// Monotonic and real-time clocks in nanoseconds.
int64_t tether_monotonic_ns(void);
int64_t tether_realtime_ns(void);

#endif
