/*
 * ist_udp server ADDR PORT [MAX]
 * ist_udp client MODE HOST PORT SIZE...
 *
 * UDP through the shim. The server echoes every datagram back to its sender (recvfrom,
 * sendto) and exits after MAX datagrams (0 or absent: never). ADDR is 0.0.0.0, a VIP, or ::
 * (dual-stack AF_INET6); PORT 0 picks a free port.
 *
 * The client resolves HOST (a VIP or a name) with getaddrinfo(AF_INET, SOCK_DGRAM), sends one
 * datagram per SIZE filled with a deterministic pattern, reads the echo (5 s receive timeout)
 * and checks that its bytes are equal and that it came from HOST:PORT.
 *
 * MODE  sendto     unconnected socket: sendto / recvfrom
 *       connected  connect(HOST:PORT), send / recvfrom; at the end connect(AF_UNSPEC) and
 *                  getpeername must fail with ENOTCONN
 *       msg        sendmsg / recvmsg with IP_PKTINFO enabled; prints the reply's destination
 *       mmsg       all datagrams in one sendmmsg, echoes gathered with recvmmsg
 *
 * server stdout  LISTENING IP:PORT
 *                RECV peer=IP:PORT bytes=N                  per datagram
 *                BIND_ERROR errno=NAME                      exit 2
 * client stdout  CONNECTED local=IP:PORT peer=IP:PORT      (connected)
 *                PKTINFO dst=IP                             (msg; per datagram, before OK)
 *                OK size=N peer=IP:PORT                     per datagram
 *                DISCONNECTED peer=ERR:ENOTCONN             (connected)
 *                DONE                                       exit 0
 *                SEND_ERROR errno=NAME | CONNECT_ERROR errno=NAME   exit 2
 *                MISMATCH size=N | WRONG_PEER got=IP:PORT want=IP:PORT
 *                | STILL_CONNECTED peer=IP:PORT             exit 3
 *                RESOLVE_ERROR EAI_NAME | RECV_ERROR errno=NAME     exit 4
 *                RECV_TIMEOUT size=N                        exit 5
 */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define EXIT_TIMEOUT 5
#define MAX_DGRAM 65507
#define MAX_SIZES 64
#define RECV_TIMEOUT_S 5

static unsigned char rbuf[MAX_DGRAM + 1];

static void send_error(const char *what, int e)
{
    out("%s errno=%s", what, errno_name(e));
    exit(EXIT_CONNECT);
}

static void recv_error(int e, size_t size)
{
    if (e == EAGAIN || e == EWOULDBLOCK) {
        out("RECV_TIMEOUT size=%zu", size);
        exit(EXIT_TIMEOUT);
    }
    out("RECV_ERROR errno=%s", errno_name(e));
    exit(EXIT_OTHER);
}

static int server(const char *host, unsigned port, unsigned long long max)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (!make_addr(host, port, &ss, &len)) {
        note("bad address %s", host);
        return EXIT_OTHER;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        send_error("BIND_ERROR", errno);
    if (ss.ss_family == AF_INET6) {
        int off = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0)
        send_error("BIND_ERROR", errno);
    char a[ADDR_BUF];
    out("LISTENING %s", fmt_local(fd, a));
    for (unsigned long long n = 0; max == 0 || n < max; n++) {
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        ssize_t r = recvfrom(fd, rbuf, sizeof rbuf, 0, (struct sockaddr *)&peer, &pl);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            out("RECV_ERROR errno=%s", errno_name(errno));
            return EXIT_OTHER;
        }
        out("RECV peer=%s bytes=%zd", fmt_addr((struct sockaddr *)&peer, pl, a), r);
        if (sendto(fd, rbuf, (size_t)r, 0, (struct sockaddr *)&peer, pl) < 0)
            out("SEND_ERROR errno=%s", errno_name(errno));
    }
    close(fd);
    return EXIT_OK;
}

enum mode { MODE_SENDTO, MODE_CONNECTED, MODE_MSG, MODE_MMSG };

static void resolve(const char *host, unsigned port, struct sockaddr_in *dst)
{
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) {
        out("RESOLVE_ERROR %s", gai_strerror(rc));
        exit(EXIT_OTHER);
    }
    memcpy(dst, res->ai_addr, sizeof *dst);
    freeaddrinfo(res);
}

/* The echo must be the pattern for its size and come from where the datagram went. */
static void check_reply(const struct sockaddr_in *dst, const struct sockaddr *from,
                        socklen_t fl, const unsigned char *data, ssize_t got, size_t size)
{
    char a[ADDR_BUF], b[ADDR_BUF];
    if (!same_addr((const struct sockaddr *)dst, sizeof *dst, from, fl)) {
        out("WRONG_PEER got=%s want=%s", fmt_addr(from, fl, a),
            fmt_addr((const struct sockaddr *)dst, sizeof *dst, b));
        exit(EXIT_MISMATCH);
    }
    static unsigned char want[MAX_DGRAM];
    struct pattern p;
    pattern_init(&p, size);
    pattern_fill(&p, want, size);
    if ((size_t)got != size || memcmp(data, want, size) != 0) {
        out("MISMATCH size=%zu", size);
        exit(EXIT_MISMATCH);
    }
    out("OK size=%zu peer=%s", size, fmt_addr(from, fl, a));
}

static void fill(unsigned char *buf, size_t size)
{
    struct pattern p;
    pattern_init(&p, size);
    pattern_fill(&p, buf, size);
}

static void one_by_one(int fd, enum mode mode, const struct sockaddr_in *dst, size_t *sizes,
                       int nsizes)
{
    static unsigned char sbuf[MAX_DGRAM];
    for (int i = 0; i < nsizes; i++) {
        size_t size = sizes[i];
        fill(sbuf, size);
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t r;
        if (mode == MODE_MSG) {
            struct iovec iov = {.iov_base = sbuf, .iov_len = size};
            struct msghdr m;
            memset(&m, 0, sizeof m);
            m.msg_name = (void *)dst;
            m.msg_namelen = sizeof *dst;
            m.msg_iov = &iov;
            m.msg_iovlen = 1;
            if (sendmsg(fd, &m, 0) < 0)
                send_error("SEND_ERROR", errno);
            union {
                struct cmsghdr align;
                unsigned char buf[256];
            } ctl;
            struct iovec riov = {.iov_base = rbuf, .iov_len = sizeof rbuf};
            memset(&m, 0, sizeof m);
            m.msg_name = &from;
            m.msg_namelen = sizeof from;
            m.msg_iov = &riov;
            m.msg_iovlen = 1;
            m.msg_control = ctl.buf;
            m.msg_controllen = sizeof ctl.buf;
            r = recvmsg(fd, &m, 0);
            if (r < 0)
                recv_error(errno, size);
            fl = m.msg_namelen;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c))
                if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                    struct in_pktinfo pi;
                    memcpy(&pi, CMSG_DATA(c), sizeof pi);
                    char ip[INET_ADDRSTRLEN];
                    inet_ntop(AF_INET, &pi.ipi_addr, ip, sizeof ip);
                    out("PKTINFO dst=%s", ip);
                }
        } else {
            if (mode == MODE_CONNECTED)
                r = send(fd, sbuf, size, 0);
            else
                r = sendto(fd, sbuf, size, 0, (const struct sockaddr *)dst, sizeof *dst);
            if (r < 0)
                send_error("SEND_ERROR", errno);
            r = recvfrom(fd, rbuf, sizeof rbuf, 0, (struct sockaddr *)&from, &fl);
            if (r < 0)
                recv_error(errno, size);
        }
        check_reply(dst, (struct sockaddr *)&from, fl, rbuf, r, size);
    }
}

static void batched(int fd, const struct sockaddr_in *dst, size_t *sizes, int nsizes)
{
    static unsigned char sbufs[MAX_SIZES][MAX_DGRAM], rbufs[MAX_SIZES][MAX_DGRAM];
    struct mmsghdr msgs[MAX_SIZES];
    struct iovec iovs[MAX_SIZES];
    struct sockaddr_storage froms[MAX_SIZES];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < nsizes; i++) {
        fill(sbufs[i], sizes[i]);
        iovs[i].iov_base = sbufs[i];
        iovs[i].iov_len = sizes[i];
        msgs[i].msg_hdr.msg_name = (void *)dst;
        msgs[i].msg_hdr.msg_namelen = sizeof *dst;
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int sent = 0;
    while (sent < nsizes) {
        int r = sendmmsg(fd, msgs + sent, (unsigned)(nsizes - sent), 0);
        if (r < 0)
            send_error("SEND_ERROR", errno);
        sent += r;
    }
    int got = 0;
    for (int tries = 0; got < nsizes && tries < nsizes; tries++) {
        memset(msgs, 0, sizeof msgs);
        for (int i = got; i < nsizes; i++) {
            iovs[i].iov_base = rbufs[i];
            iovs[i].iov_len = MAX_DGRAM;
            msgs[i].msg_hdr.msg_name = &froms[i];
            msgs[i].msg_hdr.msg_namelen = sizeof froms[i];
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int r = recvmmsg(fd, msgs + got, (unsigned)(nsizes - got), MSG_WAITFORONE, NULL);
        if (r < 0)
            recv_error(errno, sizes[got]);
        for (int i = got; i < got + r; i++)
            check_reply(dst, (struct sockaddr *)&froms[i], msgs[i].msg_hdr.msg_namelen,
                        rbufs[i], msgs[i].msg_len, sizes[i]);
        got += r;
    }
}

static int client(enum mode mode, const char *host, unsigned port, size_t *sizes, int nsizes)
{
    struct sockaddr_in dst;
    resolve(host, port, &dst);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        send_error("SEND_ERROR", errno);
    struct timeval tv = {.tv_sec = RECV_TIMEOUT_S, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char a[ADDR_BUF], b[ADDR_BUF];
    if (mode == MODE_MSG) {
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    }
    if (mode == MODE_CONNECTED) {
        if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0)
            send_error("CONNECT_ERROR", errno);
        out("CONNECTED local=%s peer=%s", fmt_local(fd, a), fmt_peer(fd, b));
    }
    if (mode == MODE_MMSG)
        batched(fd, &dst, sizes, nsizes);
    else
        one_by_one(fd, mode, &dst, sizes, nsizes);
    if (mode == MODE_CONNECTED) {
        struct sockaddr unspec;
        memset(&unspec, 0, sizeof unspec);
        unspec.sa_family = AF_UNSPEC;
        if (connect(fd, &unspec, sizeof unspec) < 0)
            send_error("CONNECT_ERROR", errno);
        const char *p = fmt_peer(fd, a);
        if (strcmp(p, "ERR:ENOTCONN") != 0) {
            out("STILL_CONNECTED peer=%s", p);
            return EXIT_MISMATCH;
        }
        out("DISCONNECTED peer=%s", p);
    }
    close(fd);
    out("DONE");
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "server") == 0 && argc <= 5) {
        unsigned port = (unsigned)parse_num(argv[3], 65535, "PORT");
        unsigned long long max = argc == 5 ? parse_num(argv[4], 1ull << 40, "MAX") : 0;
        return server(argv[2], port, max);
    }
    if (argc >= 6 && strcmp(argv[1], "client") == 0 && argc - 5 <= MAX_SIZES) {
        enum mode mode;
        if (strcmp(argv[2], "sendto") == 0)
            mode = MODE_SENDTO;
        else if (strcmp(argv[2], "connected") == 0)
            mode = MODE_CONNECTED;
        else if (strcmp(argv[2], "msg") == 0)
            mode = MODE_MSG;
        else if (strcmp(argv[2], "mmsg") == 0)
            mode = MODE_MMSG;
        else {
            note("unknown mode %s", argv[2]);
            return EXIT_OTHER;
        }
        unsigned port = (unsigned)parse_num(argv[4], 65535, "PORT");
        size_t sizes[MAX_SIZES];
        int n = argc - 5;
        for (int i = 0; i < n; i++)
            sizes[i] = (size_t)parse_num(argv[5 + i], MAX_DGRAM, "SIZE");
        return client(mode, argv[3], port, sizes, n);
    }
    note("usage: %s server ADDR PORT [MAX]\n"
         "       %s client sendto|connected|msg|mmsg HOST PORT SIZE...",
         argv[0], argv[0]);
    return EXIT_OTHER;
}
