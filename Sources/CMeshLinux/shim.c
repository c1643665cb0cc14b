#define _GNU_SOURCE
#include "CMeshLinux.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

int tether_tun_open(const char *name, char *actual) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    memcpy(actual, ifr.ifr_name, IFNAMSIZ);
    return fd;
}

int tether_tun_open_offload(const char *name, char *actual) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    int size = 10;
    unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0 || ioctl(fd, TUNSETOFFLOAD, offloads) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    memcpy(actual, ifr.ifr_name, IFNAMSIZ);
    return fd;
}

long tether_tun_write_vnet(int fd, const void *packet, size_t length) {
    static const uint8_t header[10] = {0};
    struct iovec iov[2] = {{(void *)header, sizeof header}, {(void *)packet, length}};
    return writev(fd, iov, 2);
}

static socklen_t to_sockaddr(const tether_endpoint *e, struct sockaddr_storage *ss, int socket_family) {
    memset(ss, 0, sizeof *ss);
    if (socket_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(e->port);
        if (e->family == 4) {  // v4-mapped on a dual-stack socket
            s6->sin6_addr.s6_addr[10] = 0xff;
            s6->sin6_addr.s6_addr[11] = 0xff;
            memcpy(&s6->sin6_addr.s6_addr[12], e->address, 4);
        } else {
            memcpy(s6->sin6_addr.s6_addr, e->address, 16);
        }
        return sizeof *s6;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(e->port);
    memcpy(&s4->sin_addr, e->address, 4);
    return sizeof *s4;
}

static void from_sockaddr(const struct sockaddr_storage *ss, tether_endpoint *e) {
    memset(e, 0, sizeof *e);
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        e->port = ntohs(s6->sin6_port);
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(s6->sin6_addr.s6_addr, mapped, 12) == 0) {
            e->family = 4;
            memcpy(e->address, &s6->sin6_addr.s6_addr[12], 4);
        } else {
            e->family = 6;
            memcpy(e->address, s6->sin6_addr.s6_addr, 16);
        }
    } else if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        e->family = 4;
        e->port = ntohs(s4->sin_port);
        memcpy(e->address, &s4->sin_addr, 4);
    }
}

static int socket_family_of(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return AF_INET;
    return ss.ss_family;
}

int tether_udp_open(uint16_t port, uint16_t *bound_port) {
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (fd >= 0) {
        int off = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        s6->sin6_addr = in6addr_any;
        len = sizeof *s6;
    } else {
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -errno;
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        len = sizeof *s4;
    }
    int size = 4 << 20;  // room for bursts between batches
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int tether_wait_readable(int fd, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc = poll(&p, 1, timeout_ms);
    if (rc < 0) return errno == EINTR ? 0 : -errno;
    return rc > 0 ? 1 : 0;
}

#define TETHER_MAX_BATCH 128

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

int tether_udp_enable_gro(int fd) {
    int on = 1;
    return setsockopt(fd, IPPROTO_UDP, UDP_GRO, &on, sizeof on) == 0 ? 0 : -errno;
}

int tether_udp_recv_batch(int fd, uint8_t *base, size_t stride, size_t offset, size_t capacity, unsigned count,
                          uint32_t *lengths, uint16_t *segment_sizes, tether_endpoint *sources, int timeout_ms) {
    if (count > TETHER_MAX_BATCH) count = TETHER_MAX_BATCH;
    int ready = tether_wait_readable(fd, timeout_ms);
    if (ready <= 0) return ready;
    struct mmsghdr msgs[TETHER_MAX_BATCH];
    struct iovec iovs[TETHER_MAX_BATCH];
    struct sockaddr_storage addrs[TETHER_MAX_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } controls[TETHER_MAX_BATCH];
    for (unsigned i = 0; i < count; i++) {
        iovs[i].iov_base = base + i * stride + offset;
        iovs[i].iov_len = capacity;
        memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &addrs[i];
        msgs[i].msg_hdr.msg_namelen = sizeof addrs[i];
        msgs[i].msg_hdr.msg_control = controls[i].buf;
        msgs[i].msg_hdr.msg_controllen = sizeof controls[i].buf;
    }
    int n = recvmmsg(fd, msgs, count, MSG_DONTWAIT, NULL);
    if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        segment_sizes[i] = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm; cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm)) {
            if (cm->cmsg_level == IPPROTO_UDP && cm->cmsg_type == UDP_GRO) {
                int size;
                memcpy(&size, CMSG_DATA(cm), sizeof size);
                if (size > 0 && size < 65536) segment_sizes[i] = (uint16_t)size;
            }
        }
        // A datagram larger than the buffer is truncated: report it as such
        // (length past capacity) so the caller drops it.
        lengths[i] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? (uint32_t)capacity + 1 : msgs[i].msg_len;
        from_sockaddr(&addrs[i], &sources[i]);
    }
    return n;
}

int tether_udp_send_batch(int fd, const uint8_t *const *pointers, const uint32_t *lengths,
                          const tether_endpoint *destinations, unsigned count) {
    int family = socket_family_of(fd);
    unsigned sent = 0;
    while (sent < count) {
        unsigned chunk = count - sent;
        if (chunk > TETHER_MAX_BATCH) chunk = TETHER_MAX_BATCH;
        struct mmsghdr msgs[TETHER_MAX_BATCH];
        struct iovec iovs[TETHER_MAX_BATCH];
        struct sockaddr_storage addrs[TETHER_MAX_BATCH];
        for (unsigned i = 0; i < chunk; i++) {
            iovs[i].iov_base = (void *)pointers[sent + i];
            iovs[i].iov_len = lengths[sent + i];
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &addrs[i];
            msgs[i].msg_hdr.msg_namelen = to_sockaddr(&destinations[sent + i], &addrs[i], family);
        }
        int n = sendmmsg(fd, msgs, chunk, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            // Skip a datagram the kernel refuses (e.g. unreachable) and go on.
            if (errno != EAGAIN && errno != ENOBUFS) { sent++; continue; }
            return sent > 0 ? (int)sent : -errno;
        }
        sent += (unsigned)n;
    }
    return (int)sent;
}

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

int tether_udp_send_gso(int fd, const uint8_t *buffer, size_t length, uint16_t segment_size,
                        const tether_endpoint *destination) {
    struct sockaddr_storage addr;
    socklen_t addr_len = to_sockaddr(destination, &addr, socket_family_of(fd));
    struct iovec iov = {(void *)buffer, length};
    char control[CMSG_SPACE(sizeof(uint16_t))];
    memset(control, 0, sizeof control);
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &addr;
    msg.msg_namelen = addr_len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    memcpy(CMSG_DATA(cm), &segment_size, sizeof segment_size);
    for (;;) {
        ssize_t n = sendmsg(fd, &msg, 0);
        if (n >= 0) return 0;
        if (errno == EINTR) continue;
        return -errno;
    }
}

int64_t tether_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t tether_realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
