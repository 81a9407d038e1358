/*
 * getsockname(), getpeername(), accept(), accept4(): the calls that report addresses.
 *
 * Each calls the real function into a local sockaddr_storage first, so every kernel error
 * (ENOTCONN, EBADF, EAGAIN, ...) and the kernel's length stay exactly native, then rewrites
 * image addresses to VIPs and copies the result out as the kernel would (truncated copy, full
 * length reported). Peers therefore never show up as 127.x addresses (see the Redis
 * protected-mode note in the interposition brief).
 *
 * Not _GNU_SOURCE, for the reason given at the top of hooks_connect.c.
 */
#undef _GNU_SOURCE
#define _DEFAULT_SOURCE 1
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>

/* glibc declares accept4 only under _GNU_SOURCE; this is its prototype. */
int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

/*
 * Calls where nothing needs translating, or where the kernel must report the caller's own
 * mistake (NULL or negative length), go straight to the real function with the caller's
 * arguments.
 */
static bool wants_address(struct sockaddr *addr, socklen_t *len)
{
    return shim_cfg.enabled && addr != NULL && len != NULL && (int)*len >= 0;
}

/*
 * A socket bound to the wildcard that connects to an image gets the kernel's route source,
 * 127.0.0.1, as its local address (connected UDP servers such as iperf3 -u do this). Towards
 * its overlay peer it is this node, so it reports the own VIP, as it would on a real network.
 */
static void loopback_to_own_vip(int fd, struct sockaddr_storage *ss, socklen_t len)
{
    uint32_t ip;
    uint16_t port;
    if (!sa_get_v4((const struct sockaddr *)ss, len, &ip, &port) || ip != htonl(INADDR_LOOPBACK))
        return;
    int saved = errno;
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    uint32_t pip;
    uint16_t pport;
    if (shim_real.getpeername(fd, (struct sockaddr *)&peer, &pl) == 0 &&
        sa_get_v4((const struct sockaddr *)&peer, pl, &pip, &pport) && addr_is_image(pip)) {
        int family = ss->ss_family;
        sa_make_v4(ss, family, shim_cfg.own_vip, port);
    }
    errno = saved;
}

/* A direct stream's local end is a LAN address; towards its overlay peer it is this node's VIP. */
static void direct_local_to_own_vip(int fd, struct sockaddr_storage *ss, socklen_t *len)
{
    uint32_t ip, pip;
    uint16_t port, pport;
    int family;
    if (!shim_cfg.direct || !sa_get_v4((const struct sockaddr *)ss, *len, &ip, &port) ||
        addr_is_vip(ip) || ip == htonl(INADDR_ANY))
        return; /* 127.0.0.1 is not excluded: a personal cluster on one host has its LAN there */
    int saved = errno;
    if (direct_peer(fd, &pip, &pport, &family)) {
        uint16_t overlay_port;
        if (peer_cache_get_local(fd, &overlay_port))
            port = overlay_port; /* accepted: the listener's port, not the agent's */
        *len = sa_make_v4(ss, family, shim_cfg.own_vip, port);
    }
    errno = saved;
}

SHIM_EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    shim_init();
    if (shim_real.getsockname == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!wants_address(addr, len))
        return shim_real.getsockname(fd, addr, len);

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (shim_real.getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    sa_image_to_vip(&ss, sl);
    loopback_to_own_vip(fd, &ss, sl);
    direct_local_to_own_vip(fd, &ss, &sl);
    sa_copy_out(addr, len, &ss, sl);
    return 0;
}

/*
 * A socket the shim connected through the agent has the agent's data endpoint as its kernel
 * peer. connect() recorded the VIP:port the program asked for in the peer cache; failing that
 * (exec since, or no SO_COOKIE) the agent knows it, keyed by our local address, as long as it
 * still holds the registration. Returns false (leaving *ss alone) if neither can say.
 */
static bool overlay_peer(int fd, struct sockaddr_storage *ss)
{
    uint32_t ip;
    uint16_t port;
    int family;
    /* The family must match the kernel's answer, whose length the caller reports. */
    if (peer_cache_get(fd, &ip, &port, &family) && family == ss->ss_family) {
        sa_make_v4(ss, family, ip, port);
        return true;
    }
    shim_log("getpeername fd=%d: not in the peer cache; asking the agent", fd);

    struct sockaddr_storage local;
    socklen_t ll = sizeof local;
    uint32_t src_ip;
    uint16_t src_port;
    if (shim_real.getsockname(fd, (struct sockaddr *)&local, &ll) < 0 ||
        !sa_get_v4((const struct sockaddr *)&local, ll, &src_ip, &src_port))
        return false;
    struct agent_reply reply;
    if (agent_rpc(AGENT_OP_PEER, 0, 0, 0, src_ip, src_port, &reply) < 0 || reply.error != 0) {
        shim_log("getpeername fd=%d: the agent has no answer either; returning the real peer",
                 fd);
        return false;
    }
    /* Same family and therefore the same length as the kernel's answer. */
    sa_make_v4(ss, ss->ss_family, reply.ip, reply.port);
    return true;
}

SHIM_EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    shim_init();
    if (shim_real.getpeername == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!wants_address(addr, len))
        return shim_real.getpeername(fd, addr, len);

    int saved = errno;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (shim_real.getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;

    uint32_t ip;
    uint16_t port;
    uint32_t pip;
    uint16_t pport;
    int pfamily;
    if (sa_get_v4((const struct sockaddr *)&ss, sl, &ip, &port) && ip == shim_cfg.data_ip &&
        port == shim_cfg.data_port)
        overlay_peer(fd, &ss);
    else if (shim_cfg.direct && sa_get_v4((const struct sockaddr *)&ss, sl, &ip, &port) &&
             !addr_is_image(ip) && direct_peer(fd, &pip, &pport, &pfamily))
        sl = sa_make_v4(&ss, pfamily, pip, pport); /* a direct stream: its overlay peer */
    else
        sa_image_to_vip(&ss, sl);
    sa_copy_out(addr, len, &ss, sl);
    errno = saved; /* the rpc's own failures are not the program's business */
    return 0;
}

/* accept and accept4 share this; use4 picks which real function runs, so a plain accept()
   stays a plain accept() as far as the kernel (and any seccomp policy) can tell. */
static int accept_common(int fd, struct sockaddr *addr, socklen_t *len, int flags, bool use4)
{
    bool direct = shim_cfg.enabled && shim_cfg.direct;
    if (!direct && !wants_address(addr, len))
        return use4 ? shim_real.accept4(fd, addr, len, flags) : shim_real.accept(fd, addr, len);
    if (direct && !wants_address(addr, len) && addr != NULL) {
        /* The caller's own mistake (negative length, NULL len) is the kernel's to report. */
        return use4 ? shim_real.accept4(fd, addr, len, flags) : shim_real.accept(fd, addr, len);
    }

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int cfd = use4 ? shim_real.accept4(fd, (struct sockaddr *)&ss, &sl, flags)
                   : shim_real.accept(fd, (struct sockaddr *)&ss, &sl);
    if (cfd < 0)
        return -1;
    if (direct) {
        direct_adopt(cfd, use4 ? flags : 0, &ss, sl);
        if (addr == NULL)
            return cfd;
    }
    sa_image_to_vip(&ss, sl);
    sa_copy_out(addr, len, &ss, sl);
    return cfd;
}

SHIM_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    shim_init();
    if (shim_real.accept == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return accept_common(fd, addr, len, 0, false);
}

SHIM_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    shim_init();
    if (shim_real.accept4 == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return accept_common(fd, addr, len, flags, true);
}
