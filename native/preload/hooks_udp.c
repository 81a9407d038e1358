/*
 * Datagram calls: sendto, sendmsg, sendmmsg (destination rewrite) and recvfrom, recvmsg,
 * recvmmsg, __recvfrom_chk (source rewrite). connect() of UDP sockets is in hooks_connect.c.
 *
 * No header is added to datagrams (docs/ARCHITECTURE.md, "UDP"): a datagram to a remote VIP:port
 * goes unchanged to image(VIP):port on loopback, where the node agent's proxy socket for that
 * endpoint picks it up, and datagrams from remote nodes arrive from the proxy bound to
 * image(source VIP):port. So FIONREAD, MSG_TRUNC, MSG_PEEK and GSO stay native, and all the
 * hooks do is translate addresses: destinations VIP -> image on the way out, sources (and
 * IP_PKTINFO addresses) image -> VIP on the way in.
 *
 * Hot paths stay cheap: a send without a destination (every TCP send, connected UDP) or to a
 * non-VIP destination is a pointer check and a mask; a receive costs a family/range check of
 * the address the kernel wrote. The socket is only examined (SO_PROTOCOL, getsockname) when
 * the destination is a VIP.
 *
 * Not _GNU_SOURCE, for the reason given at the top of hooks_connect.c.
 */
#undef _GNU_SOURCE
#define _DEFAULT_SOURCE 1
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

/* glibc declares these only under _GNU_SOURCE; the layout and prototypes are its own. */
struct mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};
int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags);
int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *tmo);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                       struct sockaddr *addr, socklen_t *len);

/* Also a _GNU_SOURCE-only declaration; this is the kernel's struct in6_pktinfo. */
struct shim_in6_pktinfo {
    struct in6_addr addr;
    unsigned int ifindex;
};

/* Buffers live on the caller's stack, which may be small (coroutines, runtime threads): the
   sizes keep every hook under about 6 KiB. */
#define UIO_MAXIOV_ 1024   /* the kernel's cap on sendmmsg/recvmmsg vectors */
#define MMSG_CHUNK 16      /* sendmmsg messages rewritten per real call */
#define CONTROL_BUF 1024   /* sendmsg: caller's control messages plus our IP_PKTINFO */
#define MMSG_CONTROL_BUF 128

/* ---- sending ---------------------------------------------------------------------------- */

bool udp_overlay_socket(int fd, bool *wildcard)
{
    int saved = errno;
    bool ok = false;
    int v;
    socklen_t len = sizeof v;
    struct sockaddr_storage local;
    socklen_t ll = sizeof local;
    /* A UDP (or UDP-Lite) protocol means SOCK_DGRAM; ICMP "ping" datagram sockets are left
       alone. getsockname gives the domain and the local address in one call. */
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) == 0 &&
        (v == IPPROTO_UDP || v == IPPROTO_UDPLITE) &&
        shim_real.getsockname(fd, (struct sockaddr *)&local, &ll) == 0 &&
        (local.ss_family == AF_INET || local.ss_family == AF_INET6)) {
        ok = true;
        if (local.ss_family == AF_INET6) {
            /* A V6ONLY socket refuses v4 destinations natively (ENETUNREACH); keep that. */
            len = sizeof v;
            ok = getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len) == 0 && v == 0;
        }
        bool port_zero;
        *wildcard = sa_is_unspecified((const struct sockaddr *)&local, ll, &port_zero);
    }
    errno = saved;
    return ok;
}

/*
 * Where a datagram to a VIP really goes: image(VIP):port, in the caller's own address family
 * (a dual-stack AF_INET6 socket may send to an AF_INET address, and the kernel's verdict on
 * that should stand). For a remote VIP the agent must have its proxy first. Returns false
 * with errno set if the agent cannot route the destination.
 */
static bool route_destination(uint32_t ip, uint16_t port, int family,
                              struct sockaddr_storage *dst, socklen_t *dst_len)
{
    if (ip != shim_cfg.own_vip) {
        int err = udp_route_ensure(ip, port);
        if (err != 0) {
            char d[16];
            shim_log("send to %s:%u -> errno %d", addr_str(ip, d), ntohs(port), err);
            errno = err;
            return false;
        }
    }
    *dst_len = sa_make_v4(dst, family, addr_to_image(ip), port);
    return true;
}

/*
 * An AF_INET socket that was never bound gets image(own VIP):0 before its first datagram to a
 * VIP, as connect() does: its source is then this node's address without IP_PKTINFO, and its
 * port cannot collide with an agent proxy's (different address, no wildcard). Returns true if
 * the socket is now bound to a specific address. Dual-stack AF_INET6 sockets stay unbound (an
 * image bind would cut them off from IPv6) and get IP_PKTINFO instead.
 */
static bool bind_unbound(int fd)
{
    int saved = errno;
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    bool port_zero = false;
    bool bound = shim_real.getsockname(fd, (struct sockaddr *)&local, &llen) == 0 &&
                 local.ss_family == AF_INET &&
                 sa_is_unspecified((const struct sockaddr *)&local, llen, &port_zero) &&
                 port_zero && bind_if_unbound(fd, AF_INET, false, &local, &llen) == 0;
    errno = saved;
    return bound;
}

/* The VIP and port of a destination, if it is one the overlay handles. */
static bool vip_destination(const void *addr, socklen_t len, uint32_t *ip, uint16_t *port)
{
    return addr != NULL && sa_get_v4(addr, len, ip, port) && addr_is_vip(*ip);
}

/* Whether the caller already chose a source address with IP_PKTINFO / IPV6_PKTINFO. */
static bool has_pktinfo(const struct msghdr *msg)
{
    if (msg->msg_control == NULL || msg->msg_controllen < sizeof(struct cmsghdr))
        return false;
    struct msghdr m = *msg; /* CMSG_NXTHDR wants a non-const header; this one only reads */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c))
        if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) ||
            (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO))
            return true;
    return false;
}

/*
 * Points m's control data at buf holding the caller's control messages followed by an
 * IP_PKTINFO whose ipi_spec_dst is image(own VIP). On a socket bound to the wildcard (or not
 * bound) the kernel would otherwise pick 127.0.0.1 as the source towards an image address, and
 * the receiver, or the agent, could not tell which node sent the datagram. The kernel accepts
 * IP_PKTINFO on dual-stack AF_INET6 sockets too when the destination is IPv4 (ip_cmsg_send).
 * Leaves m alone if the caller set a source itself or the result would not fit in cap.
 */
static void add_source(struct msghdr *m, unsigned char *buf, size_t cap)
{
    if (has_pktinfo(m) || (m->msg_control == NULL && m->msg_controllen != 0))
        return; /* the caller's choice, or the kernel's EFAULT, stands */
    size_t have = m->msg_controllen == 0 ? 0 : CMSG_ALIGN(m->msg_controllen);
    size_t need = have + CMSG_SPACE(sizeof(struct in_pktinfo));
    if (need > cap) {
        shim_log("sendmsg: %zu bytes of control data leave no room for IP_PKTINFO",
                 (size_t)m->msg_controllen);
        return;
    }
    memset(buf, 0, need);
    if (m->msg_controllen != 0)
        memcpy(buf, m->msg_control, m->msg_controllen);
    struct cmsghdr *c = (struct cmsghdr *)(void *)(buf + have);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
    struct in_pktinfo pi;
    memset(&pi, 0, sizeof pi);
    pi.ipi_spec_dst.s_addr = addr_to_image(shim_cfg.own_vip);
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
    m->msg_control = buf;
    m->msg_controllen = need;
}

/* Control buffers aligned for struct cmsghdr. */
union control {
    struct cmsghdr align;
    unsigned char buf[CONTROL_BUF];
};
union mmsg_control {
    struct cmsghdr align;
    unsigned char buf[MMSG_CONTROL_BUF];
};

SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                           const struct sockaddr *addr, socklen_t len)
{
    shim_init();
    if (shim_real.sendto == NULL || shim_real.sendmsg == NULL) {
        errno = ENOSYS;
        return -1;
    }
    uint32_t ip;
    uint16_t port;
    bool wildcard = false;
    if (!shim_cfg.enabled || !vip_destination(addr, len, &ip, &port) ||
        !udp_overlay_socket(fd, &wildcard))
        return shim_real.sendto(fd, buf, n, flags, addr, len);

    int saved = errno;
    struct sockaddr_storage dst;
    socklen_t dst_len;
    if (!route_destination(ip, port, addr->sa_family, &dst, &dst_len))
        return -1;
    if (wildcard && bind_unbound(fd))
        wildcard = false;
    errno = saved;
    if (!wildcard)
        return shim_real.sendto(fd, buf, n, flags, (const struct sockaddr *)&dst, dst_len);

    /* The source needs IP_PKTINFO, which only sendmsg carries. The kernel only reads the
       iovec's buffer, so dropping its const is safe. */
    struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = n};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_name = &dst;
    m.msg_namelen = dst_len;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    union control ctl;
    add_source(&m, ctl.buf, sizeof ctl.buf);
    return shim_real.sendmsg(fd, &m, flags);
}

SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    shim_init();
    if (shim_real.sendmsg == NULL) {
        errno = ENOSYS;
        return -1;
    }
    uint32_t ip;
    uint16_t port;
    bool wildcard = false;
    if (!shim_cfg.enabled || msg == NULL ||
        !vip_destination(msg->msg_name, msg->msg_namelen, &ip, &port) ||
        !udp_overlay_socket(fd, &wildcard))
        return shim_real.sendmsg(fd, msg, flags);

    int saved = errno;
    /* The caller's msghdr is const: rewrite a copy that points at our address (and, if
       needed, at a copy of its control data with our IP_PKTINFO added). */
    struct msghdr m = *msg;
    struct sockaddr_storage dst;
    socklen_t dst_len;
    if (!route_destination(ip, port, ((const struct sockaddr *)msg->msg_name)->sa_family, &dst,
                           &dst_len))
        return -1;
    if (wildcard && bind_unbound(fd))
        wildcard = false;
    m.msg_name = &dst;
    m.msg_namelen = dst_len;
    union control ctl;
    if (wildcard)
        add_source(&m, ctl.buf, sizeof ctl.buf);
    errno = saved;
    return shim_real.sendmsg(fd, &m, flags);
}

/*
 * sendmmsg: messages are copied and rewritten MMSG_CHUNK at a time (the caller's vector is not
 * ours to change, except msg_len, which the kernel writes too). Like the kernel, an error on
 * the first message is the call's error, and an error later ends the call with the count
 * sent so far.
 */
SHIM_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
    shim_init();
    if (shim_real.sendmmsg == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!shim_cfg.enabled || vec == NULL)
        return shim_real.sendmmsg(fd, vec, vlen, flags);
    if (vlen > UIO_MAXIOV_)
        vlen = UIO_MAXIOV_;
    uint32_t ip;
    uint16_t port;
    unsigned first = vlen;
    for (unsigned i = 0; i < vlen; i++)
        if (vip_destination(vec[i].msg_hdr.msg_name, vec[i].msg_hdr.msg_namelen, &ip, &port)) {
            first = i;
            break;
        }
    bool wildcard = false;
    if (first == vlen || !udp_overlay_socket(fd, &wildcard))
        return shim_real.sendmmsg(fd, vec, vlen, flags);

    if (wildcard && bind_unbound(fd))
        wildcard = false;
    int saved = errno;
    struct mmsghdr local[MMSG_CHUNK];
    struct sockaddr_storage dst[MMSG_CHUNK];
    union mmsg_control ctl[MMSG_CHUNK];
    unsigned total = 0;
    while (total < vlen) {
        unsigned k = vlen - total < MMSG_CHUNK ? vlen - total : MMSG_CHUNK;
        bool stop = false;
        for (unsigned i = 0; i < k; i++) {
            local[i] = vec[total + i];
            local[i].msg_len = 0;
            struct msghdr *m = &local[i].msg_hdr;
            if (!vip_destination(m->msg_name, m->msg_namelen, &ip, &port))
                continue;
            socklen_t dst_len;
            if (!route_destination(ip, port, ((const struct sockaddr *)m->msg_name)->sa_family,
                                   &dst[i], &dst_len)) {
                if (total + i == 0)
                    return -1; /* errno from route_destination */
                k = i;         /* send what precedes it; the caller retries the rest */
                stop = true;
                break;
            }
            m->msg_name = &dst[i];
            m->msg_namelen = dst_len;
            if (wildcard)
                add_source(m, ctl[i].buf, sizeof ctl[i].buf);
        }
        if (k == 0)
            break;
        errno = saved;
        int rc = shim_real.sendmmsg(fd, local, k, flags);
        if (rc < 0)
            return total > 0 ? (int)total : -1;
        for (int i = 0; i < rc; i++)
            vec[total + (unsigned)i].msg_len = local[i].msg_len;
        total += (unsigned)rc;
        saved = errno;
        if (stop || (unsigned)rc < k)
            break;
    }
    errno = saved;
    return (int)total;
}

/* ---- receiving -------------------------------------------------------------------------- */

/* Rewrites image addresses in received IP_PKTINFO / IPV6_PKTINFO (v4-mapped) messages. */
static void fix_control(struct msghdr *msg)
{
    if (msg->msg_control == NULL || msg->msg_controllen < sizeof(struct cmsghdr))
        return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            if (addr_is_image(pi.ipi_addr.s_addr))
                pi.ipi_addr.s_addr = addr_from_image(pi.ipi_addr.s_addr);
            if (addr_is_image(pi.ipi_spec_dst.s_addr))
                pi.ipi_spec_dst.s_addr = addr_from_image(pi.ipi_spec_dst.s_addr);
            memcpy(CMSG_DATA(c), &pi, sizeof pi);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                   c->cmsg_len >= CMSG_LEN(sizeof(struct shim_in6_pktinfo))) {
            struct shim_in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            uint32_t a;
            memcpy(&a, &pi.addr.s6_addr[12], sizeof a);
            if (IN6_IS_ADDR_V4MAPPED(&pi.addr) && addr_is_image(a)) {
                a = addr_from_image(a);
                memcpy(&pi.addr.s6_addr[12], &a, sizeof a);
                memcpy(CMSG_DATA(c), &pi, sizeof pi);
            }
        }
    }
}

/* After a successful receive: the source address (cap = the caller's buffer size before the
   call) and the control messages. Touches only memory the kernel just wrote. */
static void fix_received(struct msghdr *msg, socklen_t cap)
{
    if (msg->msg_name != NULL && (int)cap > 0)
        sa_image_to_vip_out(msg->msg_name, cap < msg->msg_namelen ? cap : msg->msg_namelen,
                            msg->msg_namelen);
    fix_control(msg);
}

/* recvfrom and __recvfrom_chk: the kernel has written *len; cap was its value before. */
static void fix_from(struct sockaddr *addr, socklen_t cap, const socklen_t *len)
{
    if ((int)cap > 0)
        sa_image_to_vip_out(addr, cap < *len ? cap : *len, *len);
}

SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                             socklen_t *len)
{
    shim_init();
    if (shim_real.recvfrom == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!shim_cfg.enabled || addr == NULL || len == NULL)
        return shim_real.recvfrom(fd, buf, n, flags, addr, len);
    socklen_t cap = *len;
    ssize_t r = shim_real.recvfrom(fd, buf, n, flags, addr, len);
    if (r >= 0)
        fix_from(addr, cap, len);
    return r;
}

SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                   struct sockaddr *addr, socklen_t *len)
{
    shim_init();
    if (shim_real.recvfrom_chk == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!shim_cfg.enabled || addr == NULL || len == NULL)
        return shim_real.recvfrom_chk(fd, buf, n, buflen, flags, addr, len);
    socklen_t cap = *len;
    /* The real one still does the overflow check (n > buflen aborts). */
    ssize_t r = shim_real.recvfrom_chk(fd, buf, n, buflen, flags, addr, len);
    if (r >= 0)
        fix_from(addr, cap, len);
    return r;
}

SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    shim_init();
    if (shim_real.recvmsg == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!shim_cfg.enabled || msg == NULL)
        return shim_real.recvmsg(fd, msg, flags);
    socklen_t cap = msg->msg_name != NULL ? msg->msg_namelen : 0;
    ssize_t r = shim_real.recvmsg(fd, msg, flags);
    if (r >= 0)
        fix_received(msg, cap);
    return r;
}

SHIM_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
                         struct timespec *tmo)
{
    shim_init();
    if (shim_real.recvmmsg == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!shim_cfg.enabled || vec == NULL)
        return shim_real.recvmmsg(fd, vec, vlen, flags, tmo);
    /* One real call (splitting it would change how long it blocks); the name buffer sizes
       are saved first because the kernel overwrites msg_namelen with the full length. */
    unsigned k = vlen < UIO_MAXIOV_ ? vlen : UIO_MAXIOV_;
    if (k == 0)
        return shim_real.recvmmsg(fd, vec, vlen, flags, tmo);
    socklen_t caps[k]; /* at most 4 KiB, usually a few bytes */
    for (unsigned i = 0; i < k; i++)
        caps[i] = vec[i].msg_hdr.msg_name != NULL ? vec[i].msg_hdr.msg_namelen : 0;
    int r = shim_real.recvmmsg(fd, vec, vlen, flags, tmo);
    for (int i = 0; i < r && (unsigned)i < k; i++)
        fix_received(&vec[i].msg_hdr, caps[i]);
    return r;
}
