/*
 * The control socket to the node agent (docs/ARCHITECTURE.md, "Shim <-> agent control
 * socket"): AF_UNIX SOCK_SEQPACKET, one connection per request, so the shim owns no fd that
 * fork, exec or close_range could disturb. The request and the answer are one datagram each.
 *
 * Version 1 lets both carry a payload: the request's after its 32-byte header (the datagram
 * length says how long), the answer's after its 16 bytes, with its length in bytes 14..15.
 * CONNECT and PEER carry none, so their datagrams are exactly what they always were.
 */
#include "shim.h"

#include <errno.h>
#include <string.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define REQUEST_MAGIC 0x4D485349u  /* "ISHM" little-endian */
#define RESPONSE_MAGIC 0x52485349u /* "ISHR" little-endian */
#define PROTOCOL_VERSION 1
#define REQUEST_SIZE 32
#define RESPONSE_SIZE 16
#define CONNECT_TIMEOUT_SECONDS 120 /* a blocking CONNECT waits while the agent dials the path */
/* Every other op is answered from the agent's own tables. A wedged agent must not hang a
   program's getaddrinfo or sendto for two minutes. */
#define LOCAL_TIMEOUT_SECONDS 10
#ifndef MSG_CMSG_CLOEXEC
#define MSG_CMSG_CLOEXEC 0x40000000
#endif

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Maps a local failure to what the hook should report. Interruption and running out of fds or
 * memory are the program's own conditions and keep their errno; anything else means the agent
 * cannot be reached.
 */
static int failure_errno(int e)
{
    switch (e) {
    case EINTR:
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        return e;
    default:
        return ENETUNREACH;
    }
}

static void drop_passed(int *passed)
{
    if (passed != NULL && *passed >= 0) {
        int saved = errno;
        close(*passed);
        *passed = -1;
        errno = saved;
    }
}

static int fail(int fd, int err, const char *what, int cause)
{
    if (fd >= 0)
        close(fd);
    shim_log("agent %s failed (%s, errno %d) -> errno %d", what, shim_cfg.agent_path, cause, err);
    errno = err;
    return -1;
}

static int rpc(uint16_t op, uint32_t flags, uint32_t dst_ip, uint16_t dst_port, uint32_t src_ip,
               uint16_t src_port, const void *payload, size_t payload_len,
               struct agent_reply *reply, int *passed)
{
    if (passed != NULL)
        *passed = -1;
    if (payload_len > AGENT_PAYLOAD_MAX) {
        errno = EINVAL; /* a caller bug, never the program's: callers check lengths first */
        return -1;
    }
    uint8_t req[REQUEST_SIZE + AGENT_PAYLOAD_MAX] = {0};
    put_le32(req + 0, REQUEST_MAGIC);
    put_le16(req + 4, PROTOCOL_VERSION);
    put_le16(req + 6, op);
    put_le32(req + 8, flags);
    /* Addresses and ports are already in network order: copy their bytes as they are. */
    memcpy(req + 12, &dst_ip, 4);
    memcpy(req + 16, &dst_port, 2);
    memcpy(req + 18, &src_port, 2);
    memcpy(req + 20, &src_ip, 4);
    /* bytes 24..31: reserved, zero */
    if (payload_len > 0)
        memcpy(req + REQUEST_SIZE, payload, payload_len);
    size_t req_len = REQUEST_SIZE + payload_len;

    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(-1, failure_errno(errno), "socket", errno);

    /* The send timeout also bounds connect() when the agent's backlog is full. */
    struct timeval tv = {
        .tv_sec = op == AGENT_OP_CONNECT ? CONNECT_TIMEOUT_SECONDS : LOCAL_TIMEOUT_SECONDS,
        .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, shim_cfg.agent_path, strlen(shim_cfg.agent_path) + 1);
    /* The real connect: this socket is AF_UNIX, but the hook is not the place to find out. */
    if (shim_real.connect(fd, (const struct sockaddr *)&sun, sizeof sun) < 0)
        return fail(fd, failure_errno(errno), "connect", errno);

    ssize_t n = send(fd, req, req_len, MSG_NOSIGNAL);
    if (n != (ssize_t)req_len)
        return fail(fd, n < 0 ? failure_errno(errno) : ENETUNREACH, "send", n < 0 ? errno : 0);

    /* One byte more than the largest valid answer: MSG_TRUNC reports the real size, so an
       oversized answer is recognised rather than silently cut. */
    uint8_t resp[RESPONSE_SIZE + AGENT_PAYLOAD_MAX + 1];
    /* recvmsg, so that a descriptor the agent attached (ADOPT) is received, never leaked. */
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = {.iov_base = resp, .iov_len = sizeof resp};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    n = recvmsg(fd, &msg, MSG_TRUNC | MSG_CMSG_CLOEXEC);
    if (n >= 0) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                int got;
                memcpy(&got, CMSG_DATA(c), sizeof got);
                if (passed != NULL && *passed < 0)
                    *passed = got;
                else
                    close(got);
            }
        }
    }
    if (n < 0) {
        int e = errno;
        /* SO_RCVTIMEO expiry reads as EAGAIN: the agent is alive but did not answer in time. */
        int err = (e == EAGAIN || e == EWOULDBLOCK) ? ETIMEDOUT : failure_errno(e);
        return fail(fd, err, "recv", e);
    }
    if (n < (ssize_t)RESPONSE_SIZE) {
        drop_passed(passed);
        return fail(fd, ENETUNREACH, "answer size", (int)n);
    }
    size_t plen = get_le16(resp + 14);
    int32_t error = (int32_t)get_le32(resp + 4);
    if (get_le32(resp + 0) != RESPONSE_MAGIC || plen > AGENT_PAYLOAD_MAX ||
        (size_t)n != RESPONSE_SIZE + plen || error < 0 || error > 4095) {
        drop_passed(passed);
        return fail(fd, ENETUNREACH, "answer format", (int)n);
    }

    reply->error = error;
    memcpy(&reply->ip, resp + 8, 4);
    memcpy(&reply->port, resp + 12, 2);
    reply->payload_len = plen;
    memcpy(reply->payload, resp + RESPONSE_SIZE, plen);
    reply->payload[plen] = '\0';
    close(fd);
    return 0;
}

int agent_rpc_payload(uint16_t op, uint32_t flags, uint32_t dst_ip, uint16_t dst_port,
                      uint32_t src_ip, uint16_t src_port, const void *payload, size_t payload_len,
                      struct agent_reply *reply)
{
    return rpc(op, flags, dst_ip, dst_port, src_ip, src_port, payload, payload_len, reply, NULL);
}

int agent_rpc_fd(uint16_t op, uint32_t flags, uint32_t dst_ip, uint16_t dst_port, uint32_t src_ip,
                 uint16_t src_port, struct agent_reply *reply, int *passed)
{
    return rpc(op, flags, dst_ip, dst_port, src_ip, src_port, NULL, 0, reply, passed);
}

int agent_rpc(uint16_t op, uint32_t flags, uint32_t dst_ip, uint16_t dst_port, uint32_t src_ip,
              uint16_t src_port, struct agent_reply *reply)
{
    return rpc(op, flags, dst_ip, dst_port, src_ip, src_port, NULL, 0, reply, NULL);
}
