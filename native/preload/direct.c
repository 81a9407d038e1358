/*
 * Kernel-direct LAN streams between two nodes of one site (docs/ARCHITECTURE.md, "Direct
 * streams inside a site"). The router stays on the control path only: it decides whether the
 * stream may exist (domains, revocation) and hands out a one-use grant; the bytes then go from
 * the program's socket to the peer program's socket through the kernels alone.
 *
 * Connecting side (direct_connect): DIRECT asks the agent, which asks the router, for a grant:
 * the destination agent's direct listener (a real LAN address) and a 96-byte leg header keyed
 * by that agent's session key. The program's own socket is connected there, sends the header
 * and reads the 8-byte leg reply. The socket stays the program's, with every option it set; on
 * OK the kernel connection is the stream. A socket that was not granted keeps its fresh state
 * and takes the router path; one whose direct attempt failed after its connect is replaced by a
 * fresh socket under the same fd number first (dup3), so that the router path reports the
 * errno the program would have seen without the direct path.
 *
 * Accepting side (direct_adopt): the destination agent makes the listening program's accept
 * return by connecting a doorbell to its listener from image(src VIP):src port, as it does for
 * relayed streams. ADOPT then returns the LAN socket (SCM_RIGHTS), which dup3 puts in the
 * doorbell's place. Only processes that said LISTEN get doorbells to adopt; for others the agent
 * relays, so programs without the shim still work.
 *
 * Both ends record the stream in the peer cache (PEER_DIRECT), so that getsockname and
 * getpeername show VIPs rather than LAN addresses.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GRANT_SIZE 96
#define REPLY_SIZE 8
#define REPLY_MAGIC 0x49535452u /* "ISTR", big-endian on the wire */
/* Bounds the whole direct attempt: LAN connect, grant, the far agent's doorbell connect (10 s). */
#define DIRECT_DEADLINE_MS 15000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline; signals do not end the wait. */
static bool wait_for(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return (p.revents & (events | POLLERR | POLLHUP)) != 0;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

/* Leg header flag (bytes 6-7, big-endian): the router sends no reply; a failure resets the connection. */
#define GRANT_FLAG_NO_REPLY 0x0100

static bool grant_has_no_reply(const uint8_t *grant)
{
    return (((uint16_t)grant[6] << 8 | grant[7]) & GRANT_FLAG_NO_REPLY) != 0;
}

/*
 * The handshake on the connected socket, blocking or not: send the grant, read the reply. A grant
 * without a reply (a non-blocking connect to another site) ends after the send with status 0.
 */
static bool handshake(int fd, const void *grant, long long deadline, uint8_t *status)
{
    size_t sent = 0;
    while (sent < GRANT_SIZE) {
        ssize_t n = send(fd, (const char *)grant + sent, GRANT_SIZE - sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            sent += (size_t)n;
        else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_for(fd, POLLOUT, deadline))
                return false;
        } else
            return false;
    }
    if (grant_has_no_reply(grant)) {
        *status = 0;
        return true;
    }
    uint8_t reply[REPLY_SIZE];
    size_t got = 0;
    while (got < REPLY_SIZE) {
        /* Exactly the reply's bytes: what follows is the peer program's. */
        ssize_t n = recv(fd, reply + got, REPLY_SIZE - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_for(fd, POLLIN, deadline))
                return false;
        } else
            return false;
    }
    uint32_t magic = (uint32_t)reply[0] << 24 | (uint32_t)reply[1] << 16 |
                     (uint32_t)reply[2] << 8 | reply[3];
    if (magic != REPLY_MAGIC)
        return false;
    *status = reply[4];
    return true;
}

/*
 * Puts a fresh, unconnected socket of the same kind under fd: file status flags, close-on-exec
 * and the options programs commonly set before connecting are carried over. Returns false if no
 * socket could be made (fd is then left as it was).
 */
static bool replace_socket(int fd)
{
    int domain, type, protocol;
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
        return false;
    len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return false;
    len = sizeof protocol;
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) < 0)
        return false;
    int nodelay = 0, keepalive = 0, reuse = 0;
    len = sizeof nodelay;
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len);
    len = sizeof keepalive;
    getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keepalive, &len);
    len = sizeof reuse;
    getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, &len);
    int fl = fcntl(fd, F_GETFL);
    int fdfl = fcntl(fd, F_GETFD);
    int nfd = socket(domain, type | SOCK_CLOEXEC, protocol);
    if (nfd < 0)
        return false;
    if (domain == AF_INET6) {
        int off = 0;
        setsockopt(nfd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    setsockopt(nfd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
    setsockopt(nfd, SOL_SOCKET, SO_KEEPALIVE, &keepalive, sizeof keepalive);
    setsockopt(nfd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
    if (fl >= 0)
        fcntl(nfd, F_SETFL, fl & (O_NONBLOCK | O_APPEND | O_ASYNC));
    int r = dup3(nfd, fd, (fdfl >= 0 && (fdfl & FD_CLOEXEC)) ? O_CLOEXEC : 0);
    close(nfd);
    return r == fd;
}

int direct_connect(int fd, int family, uint32_t dst_ip, uint16_t dst_port, int saved, int *rc)
{
    struct agent_reply reply;
    int fl = fcntl(fd, F_GETFL);
    bool nonblocking = fl >= 0 && (fl & O_NONBLOCK);
    /* The agent tells blocking from non-blocking: to another site, a non-blocking connect's grant asks
       the router for no reply (the connect must not wait for the whole path). */
    if (agent_rpc(AGENT_OP_DIRECT, nonblocking ? 1 : 0, dst_ip, dst_port, 0, 0, &reply) < 0 ||
        reply.error != 0 || reply.payload_len != GRANT_SIZE) {
        errno = saved;
        return 0; /* no grant: the router path decides (and reports any refusal) */
    }
    char d[16], l[16];
    long long deadline = now_ms() + DIRECT_DEADLINE_MS;

    /* Before the connect, so that no thread sees the socket connected without its entry. */
    peer_cache_put(fd, dst_ip, dst_port, family | PEER_DIRECT);
    struct sockaddr_storage target;
    socklen_t tlen = sa_make_v4(&target, family, reply.ip, reply.port);
    int r = shim_real.connect(fd, (const struct sockaddr *)&target, tlen);
    bool connected = r == 0;
    if (r < 0 && (errno == EINPROGRESS || errno == EINTR) && wait_for(fd, POLLOUT, deadline)) {
        int err = 0;
        socklen_t el = sizeof err;
        connected = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0;
    }
    uint8_t status = 0xFF;
    if (connected && handshake(fd, reply.payload, deadline, &status) && status == 0) {
        shim_log("connect fd=%d %s:%u -> direct via %s:%u%s", fd, addr_str(dst_ip, d),
                 ntohs(dst_port), addr_str(reply.ip, l), ntohs(reply.port),
                 nonblocking ? " (non-blocking)" : "");
        /* A non-blocking connect reports what it always reports; the socket is writable at
           once, SO_ERROR is 0, and epoll sees it ready. */
        if (nonblocking) {
            errno = EINPROGRESS;
            *rc = -1;
        } else {
            errno = saved;
            *rc = 0;
        }
        return 1;
    }

    shim_log("connect fd=%d %s:%u: direct attempt failed (status %u); router path", fd,
             addr_str(dst_ip, d), ntohs(dst_port), status);
    peer_cache_forget(fd);
    if (!replace_socket(fd)) {
        errno = ENOBUFS;
        *rc = -1;
        return 1;
    }
    errno = saved;
    return 0;
}

/* A peer-cache entry saying "asked the agent: not a direct stream", so the question is asked once. */
#define PEER_NOT_DIRECT 0x2000

/*
 * After exec (an inetd-style child) the peer cache is empty: the agent remembers the streams it
 * handed over, by their kernel addresses (DIRECT_PEER). The answer, yes or no, is cached.
 */
static bool ask_agent(int fd, uint32_t *peer_ip, uint16_t *peer_port, int *family)
{
    struct sockaddr_storage local, peer;
    socklen_t ll = sizeof local, pl = sizeof peer;
    uint32_t lip, pip;
    uint16_t lport, pport;
    if (shim_real.getsockname(fd, (struct sockaddr *)&local, &ll) < 0 ||
        shim_real.getpeername(fd, (struct sockaddr *)&peer, &pl) < 0 ||
        !sa_get_v4((const struct sockaddr *)&local, ll, &lip, &lport) ||
        !sa_get_v4((const struct sockaddr *)&peer, pl, &pip, &pport))
        return false;
    struct agent_reply reply;
    if (agent_rpc(AGENT_OP_DIRECT_PEER, 0, pip, pport, lip, lport, &reply) < 0)
        return false; /* cannot tell now: ask again next time */
    if (reply.error != 0 || reply.payload_len != 2) {
        peer_cache_put(fd, 0, 0, PEER_NOT_DIRECT);
        return false;
    }
    uint16_t overlay_local;
    memcpy(&overlay_local, reply.payload, 2); /* network order, as every port here */
    *family = local.ss_family;
    peer_cache_put(fd, reply.ip, reply.port, *family | PEER_DIRECT);
    peer_cache_put_local(fd, overlay_local);
    *peer_ip = reply.ip;
    *peer_port = reply.port;
    return true;
}

bool direct_peer(int fd, uint32_t *peer_ip, uint16_t *peer_port, int *family)
{
    int saved = errno;
    int f = 0;
    bool found;
    if (peer_cache_get(fd, peer_ip, peer_port, &f))
        found = (f & PEER_DIRECT) != 0;
    else
        found = ask_agent(fd, peer_ip, peer_port, &f);
    *family = f & ~PEER_DIRECT;
    errno = saved;
    return found;
}

void direct_adopt(int cfd, int flags, struct sockaddr_storage *ss, socklen_t sl)
{
    uint32_t peer_ip;
    uint16_t peer_port;
    if (!sa_get_v4((const struct sockaddr *)ss, sl, &peer_ip, &peer_port) ||
        !addr_is_image(peer_ip) || addr_from_image(peer_ip) == shim_cfg.own_vip)
        return; /* not from the agent: nothing to adopt */
    struct sockaddr_storage local;
    socklen_t ll = sizeof local;
    uint32_t local_ip;
    uint16_t local_port;
    if (shim_real.getsockname(cfd, (struct sockaddr *)&local, &ll) < 0 ||
        !sa_get_v4((const struct sockaddr *)&local, ll, &local_ip, &local_port))
        return;
    int saved = errno;
    struct agent_reply reply;
    int passed = -1;
    if (agent_rpc_fd(AGENT_OP_ADOPT, 0, local_ip, local_port, peer_ip, peer_port, &reply,
                     &passed) < 0 ||
        reply.error != 0 || passed < 0) {
        if (passed >= 0)
            close(passed);
        errno = saved;
        return; /* a relayed stream, or one the agent relays now: the doorbell is the stream */
    }
    /* The listener's options reached the doorbell; carry the usual one over. */
    int nodelay = 0;
    socklen_t len = sizeof nodelay;
    if (getsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0 && nodelay)
        setsockopt(passed, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
    int fl = fcntl(passed, F_GETFL);
    if (fl >= 0)
        fcntl(passed, F_SETFL,
              (flags & SOCK_NONBLOCK) ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
    /* The LAN socket is AF_INET; under a dual-stack AF_INET6 listener the program expects AF_INET6
       addresses, so the entry keeps the family the program saw and the hooks answer in it. */
    int family = ss->ss_family;
    if (dup3(passed, cfd, (flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0) == cfd) {
        peer_cache_put(cfd, reply.ip, reply.port, family | PEER_DIRECT);
        peer_cache_put_local(cfd, local_port);
        sa_make_v4(ss, family, reply.ip, reply.port);
        char p[16];
        shim_log("accept fd=%d: adopted the direct stream from %s:%u", cfd,
                 addr_str(reply.ip, p), ntohs(reply.port));
    }
    close(passed);
    errno = saved;
}
