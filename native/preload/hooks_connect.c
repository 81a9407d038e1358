/*
 * connect() and bind(): the two calls that decide where a socket goes. TCP connects go through
 * the agent's data endpoint; UDP connects go straight to the destination's loopback image,
 * where the agent's proxy for it lives (see hooks_udp.c).
 *
 * Under _GNU_SOURCE glibc declares the address parameter of the socket calls as a transparent
 * union, which a definition cannot restate portably; the hooks are written against the plain
 * POSIX prototypes instead, so this file must not see _GNU_SOURCE.
 */
#undef _GNU_SOURCE
#define _DEFAULT_SOURCE 1
#include "shim.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/*
 * Whether fd is a stream socket the overlay can carry towards an address of the given family:
 * the socket's own domain must match (otherwise the kernel's EAFNOSUPPORT/EINVAL should
 * stand), it must be TCP, and an AF_INET6 socket must accept v4-mapped addresses, since a
 * V6ONLY socket must fail on ::ffff:VIP just as it does natively.
 */
static bool overlay_stream_socket(int fd, int family)
{
    int v;
    socklen_t len = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0 || v != family)
        return false;
    len = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 ||
        (v & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM)
        return false;
    len = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) < 0 ||
        (v != IPPROTO_TCP && v != IPPROTO_MPTCP))
        return false;
    if (family == AF_INET6) {
        len = sizeof v;
        if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len) < 0 || v != 0)
            return false;
    }
    return true;
}

/* Whether the socket is unconnected (TCP_CLOSE), i.e. a connect() would start something. */
static bool tcp_closed(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 || len < 1)
        return true; /* cannot tell: treat as fresh, the kernel has the last word anyway */
    return ti.tcpi_state == TCP_CLOSE;
}

/*
 * Gives an unbound socket the local address image(own VIP):0 so that the far end, and our own
 * getsockname, see this node's VIP rather than 127.0.0.1. SO_REUSEADDR lets the destination
 * agent bind the same image:port for its own leg while this socket holds it. On return *local
 * holds the socket's local address. Returns -1 with bind's errno on failure. For UDP (reuse
 * false) no SO_REUSEADDR: on a datagram socket it would let another socket share, and take
 * over, the program's address; the agent never binds image(own) for UDP anyway.
 */
int bind_if_unbound(int fd, int family, bool reuse, struct sockaddr_storage *local,
                    socklen_t *llen)
{
    *llen = sizeof *local;
    if (shim_real.getsockname(fd, (struct sockaddr *)local, llen) < 0)
        return -1;
    bool port_zero = false;
    if (!sa_is_unspecified((const struct sockaddr *)local, *llen, &port_zero) || !port_zero)
        return 0; /* already bound by the program: keep its choice */

    int one = 1;
    if (reuse)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_storage want;
    socklen_t wlen = sa_make_v4(&want, family, addr_to_image(shim_cfg.own_vip), 0);
    if (shim_real.bind(fd, (const struct sockaddr *)&want, wlen) < 0) {
        shim_log("connect: bind to own image failed (errno %d)", errno);
        /* bind(port 0) says EADDRINUSE when the ephemeral ports run out; a native connect
           says EADDRNOTAVAIL for the same condition, and that is what programs expect. */
        if (errno == EADDRINUSE)
            errno = EADDRNOTAVAIL;
        return -1;
    }
    *llen = sizeof *local;
    return shim_real.getsockname(fd, (struct sockaddr *)local, llen);
}

/* Whether the program left the socket unbound (the kernel then picks the LAN source address). */
static bool unbound(int fd)
{
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    bool port_zero = false;
    return shim_real.getsockname(fd, (struct sockaddr *)&local, &llen) == 0 &&
           sa_is_unspecified((const struct sockaddr *)&local, llen, &port_zero) && port_zero;
}

/*
 * The source address the agent will see on our data connection, which is how it matches the
 * connection to this registration. False if it cannot be expressed: a real IPv6 local address
 * (the program bound one itself), or a port the kernel has not chosen yet because the program
 * bound with IP_BIND_ADDRESS_NO_PORT (it is only picked inside connect, too late to register).
 */
static bool registration_source(const struct sockaddr_storage *local, socklen_t llen,
                                uint32_t *src_ip, uint16_t *src_port)
{
    bool port_zero = false;
    if (sa_is_unspecified((const struct sockaddr *)local, llen, &port_zero)) {
        /* The program bound the wildcard with a port: the kernel will pick 127.0.0.1 as the
           source towards the loopback data endpoint. */
        *src_ip = htonl(INADDR_LOOPBACK);
        *src_port = local->ss_family == AF_INET
                        ? ((const struct sockaddr_in *)local)->sin_port
                        : ((const struct sockaddr_in6 *)local)->sin6_port;
    } else if (!sa_get_v4((const struct sockaddr *)local, llen, src_ip, src_port)) {
        return false;
    }
    return *src_port != 0;
}

/*
 * A UDP socket connected to a VIP: the kernel connects it to image(VIP):port, the agent's proxy
 * for a remote VIP (made sure of first, so that a failure leaves the socket as it was) or the
 * own VIP's image. An unbound socket is first bound to image(own):0, so that its datagrams
 * carry this node's address (the kernel would pick 127.0.0.1 towards an image). Readiness,
 * send() and recv() on the connected socket then need no help; getpeername and getsockname
 * translate the images back. Works for dual-stack AF_INET6 sockets with ::ffff:VIP, and for
 * AF_INET addresses on them (which the kernel accepts for UDP).
 */
static int connect_udp(int fd, int family, uint32_t dst_ip, uint16_t dst_port, int saved)
{
    char d[16];
    if (dst_ip != shim_cfg.own_vip) {
        int err = udp_route_ensure(dst_ip, dst_port);
        if (err != 0) {
            shim_log("connect udp fd=%d %s:%u -> errno %d", fd, addr_str(dst_ip, d),
                     ntohs(dst_port), err);
            errno = err;
            return -1;
        }
    }
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    if (shim_real.getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
        return -1;
    if (bind_if_unbound(fd, local.ss_family, false, &local, &llen) < 0)
        return -1;
    shim_log("connect udp fd=%d %s:%u -> image", fd, addr_str(dst_ip, d), ntohs(dst_port));
    struct sockaddr_storage target;
    socklen_t tlen = sa_make_v4(&target, family, addr_to_image(dst_ip), dst_port);
    errno = saved;
    return shim_real.connect(fd, (const struct sockaddr *)&target, tlen);
}

SHIM_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    shim_init();
    if (shim_real.connect == NULL) {
        errno = ENOSYS;
        return -1;
    }
    uint32_t dst_ip;
    uint16_t dst_port;
    if (!shim_cfg.enabled || !sa_get_v4(addr, len, &dst_ip, &dst_port) || !addr_is_vip(dst_ip))
        return shim_real.connect(fd, addr, len);

    int saved = errno;
    int family = addr->sa_family;
    char d[16];
    if (!overlay_stream_socket(fd, family)) {
        bool wildcard;
        if (udp_overlay_socket(fd, &wildcard))
            return connect_udp(fd, family, dst_ip, dst_port, saved);
        errno = saved;
        return shim_real.connect(fd, addr, len); /* V6ONLY, not a socket: native result */
    }

    struct sockaddr_storage target;
    socklen_t tlen;

    /* Connecting again while connected or connecting: let the kernel answer EISCONN or
       EALREADY (or wait, for a blocking socket) without registering a second time. */
    if (!tcp_closed(fd)) {
        tlen = sa_make_v4(&target, family, shim_cfg.data_ip, shim_cfg.data_port);
        errno = saved;
        return shim_real.connect(fd, (const struct sockaddr *)&target, tlen);
    }

    struct sockaddr_storage local;
    socklen_t llen;
    if (shim_cfg.direct && dst_ip != shim_cfg.own_vip && unbound(fd)) {
        int rc;
        if (direct_connect(fd, family, dst_ip, dst_port, saved, &rc))
            return rc;
    }
    if (bind_if_unbound(fd, family, true, &local, &llen) < 0)
        return -1;

    if (dst_ip == shim_cfg.own_vip) {
        /* Our own VIP: straight to the image over kernel loopback, no agent involved. */
        shim_log("connect fd=%d %s:%u -> own image", fd, addr_str(dst_ip, d), ntohs(dst_port));
        tlen = sa_make_v4(&target, family, addr_to_image(dst_ip), dst_port);
        errno = saved;
        return shim_real.connect(fd, (const struct sockaddr *)&target, tlen);
    }

    uint32_t src_ip;
    uint16_t src_port;
    if (!registration_source(&local, llen, &src_ip, &src_port)) {
        /* Passing through would send overlay traffic to the real network under the VIP, so
           fail the way an unroutable destination fails. */
        shim_log("connect fd=%d: local address cannot be registered -> ENETUNREACH", fd);
        errno = ENETUNREACH;
        return -1;
    }

    int fl = fcntl(fd, F_GETFL);
    uint32_t flags = (fl >= 0 && (fl & O_NONBLOCK)) ? AGENT_FLAG_NONBLOCK : 0;
    struct agent_reply reply;
    if (agent_rpc(AGENT_OP_CONNECT, flags, dst_ip, dst_port, src_ip, src_port, &reply) < 0)
        return -1; /* errno set by agent_rpc (ENETUNREACH, EINTR, ETIMEDOUT, ...) */
    char s[16];
    shim_log("connect fd=%d %s:%u from %s:%u%s -> agent error %d", fd, addr_str(dst_ip, d),
             ntohs(dst_port), addr_str(src_ip, s), ntohs(src_port),
             flags ? " (non-blocking)" : "", reply.error);
    if (reply.error != 0) {
        errno = reply.error;
        return -1;
    }

    /* Recorded before the real connect, so that no other thread can see the socket connected
       (poll, epoll) and call getpeername while the entry is still missing. */
    peer_cache_put(fd, dst_ip, dst_port, family);

    /* The kernel connects to the agent and its own result (0, EINPROGRESS, errno) is the
       program's result, so readiness, SO_ERROR and epoll stay native. */
    tlen = sa_make_v4(&target, family, shim_cfg.data_ip, shim_cfg.data_port);
    errno = saved;
    int rc = shim_real.connect(fd, (const struct sockaddr *)&target, tlen);
    if (rc < 0 && errno != EINPROGRESS && errno != EINTR && errno != EALREADY &&
        errno != EISCONN) {
        /* The socket did not get connected. The entry would be harmless (getpeername uses it
           only when the kernel peer is the data endpoint, and a later overlay connect
           replaces it), but the cache is meant to hold only live connections. EINTR leaves a
           blocking connect running in the background; EALREADY and EISCONN mean another
           thread's connect of this socket is in progress or done, and its entry must stay. */
        peer_cache_forget(fd); /* preserves errno */
    }
    return rc;
}

/*
 * A UDP socket bound to the wildcard with a fixed port also covers every image address on that
 * port, where the agent keeps its proxies for remote endpoints (image(remote VIP):port). Both
 * sides set SO_REUSEADDR so that neither bind fails for the other; delivery is unaffected,
 * because the kernel gives datagrams to the most specific match: those for a remote VIP's image
 * to the proxy, all others to the program. Port 0 binds are left alone (with SO_REUSEADDR
 * the kernel could hand two wildcard sockets the same ephemeral port).
 */
static void share_port_with_proxies(int fd)
{
    int saved = errno;
    int v;
    socklen_t len = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) == 0 &&
        (v == IPPROTO_UDP || v == IPPROTO_UDPLITE)) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        shim_log("bind fd=%d: UDP wildcard with a port, SO_REUSEADDR beside the agent's proxies", fd);
    }
    errno = saved;
}

SHIM_EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    shim_init();
    if (shim_real.bind == NULL) {
        errno = ENOSYS;
        return -1;
    }
    uint32_t ip;
    uint16_t port;
    bool port_zero = true;
    if (shim_cfg.enabled && sa_is_unspecified(addr, len, &port_zero) && !port_zero)
        share_port_with_proxies(fd);
    if (!shim_cfg.enabled || !sa_get_v4(addr, len, &ip, &port) || !addr_is_vip(ip))
        return shim_real.bind(fd, addr, len);

    int saved = errno;
    if (addr->sa_family == AF_INET6) {
        /* A V6ONLY socket refuses v4-mapped addresses natively; keep that. */
        int v = 0;
        socklen_t vlen = sizeof v;
        if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vlen) < 0 || v != 0) {
            errno = saved;
            return shim_real.bind(fd, addr, len);
        }
    }
    char a[16];
    if (ip != shim_cfg.own_vip) {
        /* Another node's VIP is not an address of this host (natively the same errno). */
        shim_log("bind fd=%d %s:%u -> EADDRNOTAVAIL", fd, addr_str(ip, a), ntohs(port));
        errno = EADDRNOTAVAIL;
        return -1;
    }
    /* Same port on the image: two virtual nodes on one host can both listen on port p. */
    shim_log("bind fd=%d %s:%u -> own image", fd, addr_str(ip, a), ntohs(port));
    struct sockaddr_storage target;
    socklen_t tlen = sa_make_v4(&target, addr->sa_family, addr_to_image(ip), port);
    errno = saved;
    return shim_real.bind(fd, (const struct sockaddr *)&target, tlen);
}

/*
 * listen(): a TCP listener on image(own VIP):port or the wildcard tells the agent that this
 * process adopts direct streams to that port (direct.c). Dual-stack AF_INET6 listeners too: the
 * AF_INET LAN socket that replaces an accepted AF_INET6 one is answered for in AF_INET6 by the
 * address hooks (direct.c).
 */
SHIM_EXPORT int listen(int fd, int backlog)
{
    shim_init();
    if (shim_real.listen == NULL) {
        errno = ENOSYS;
        return -1;
    }
    int rc = shim_real.listen(fd, backlog);
    if (rc < 0 || !shim_cfg.enabled || !shim_cfg.direct)
        return rc;
    int saved = errno;
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    uint32_t ip;
    uint16_t port;
    bool port_zero = false;
    if ((overlay_stream_socket(fd, AF_INET) || overlay_stream_socket(fd, AF_INET6)) &&
        shim_real.getsockname(fd, (struct sockaddr *)&local, &llen) == 0 &&
        ((sa_get_v4((const struct sockaddr *)&local, llen, &ip, &port) &&
          ip == addr_to_image(shim_cfg.own_vip)) ||
         sa_is_unspecified((const struct sockaddr *)&local, llen, &port_zero))) {
        port = local.ss_family == AF_INET ? ((const struct sockaddr_in *)&local)->sin_port
                                          : ((const struct sockaddr_in6 *)&local)->sin6_port;
        struct agent_reply reply;
        if (agent_rpc(AGENT_OP_LISTEN, 0, 0, port, 0, 0, &reply) == 0)
            shim_log("listen fd=%d port %u: adopts direct streams", fd, ntohs(port));
    }
    errno = saved;
    return rc;
}
