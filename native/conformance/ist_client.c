/*
 * ist_client MODE HOST PORT BYTES
 *
 * Connects to HOST:PORT (dotted IPv4), sends BYTES bytes of a deterministic pattern while
 * reading the echo, half-closes, reads to EOF and compares.
 *
 * MODE  block     blocking connect on an AF_INET socket
 *       nonblock  O_NONBLOCK connect: 0 or EINPROGRESS, then poll(POLLOUT, 10 s), SO_ERROR
 *       epollet   as nonblock, but waits with epoll(EPOLLOUT | EPOLLET)
 *       mapped    AF_INET6 dual-stack socket, blocking connect to ::ffff:HOST
 *
 * stdout  CONNECT_CALL rc=0 | CONNECT_CALL errno=NAME   (nonblock, epollet: the connect() call)
 *         CONNECT_ERROR errno=NAME                      exit 2
 *         CONNECTED local=IP:PORT peer=IP:PORT
 *         OK bytes=N                                    exit 0
 *         MISMATCH at=OFFSET | SHORT got=N              exit 3
 *         IO_ERROR errno=NAME                           exit 4
 */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 10000
#define IDLE_TIMEOUT_MS 30000 /* no progress in either direction for this long: give up */
#define CHUNK 65536

enum mode { MODE_BLOCK, MODE_NONBLOCK, MODE_EPOLLET, MODE_MAPPED };

static void connect_error(int e)
{
    out("CONNECT_ERROR errno=%s", errno_name(e));
    exit(EXIT_CONNECT);
}

static void io_error(int e)
{
    out("IO_ERROR errno=%s", errno_name(e));
    exit(EXIT_OTHER);
}

/* Waits for a non-blocking connect to finish; returns SO_ERROR (ETIMEDOUT if it never did). */
static int wait_connected(int fd, enum mode mode)
{
    if (mode == MODE_EPOLLET) {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0)
            io_error(errno);
        struct epoll_event ev = {.events = EPOLLOUT | EPOLLET, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            io_error(errno);
        int n;
        do
            n = epoll_wait(ep, &ev, 1, CONNECT_TIMEOUT_MS);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            io_error(errno);
        close(ep);
        if (n == 0)
            return ETIMEDOUT;
    } else {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n;
        do
            n = poll(&p, 1, CONNECT_TIMEOUT_MS);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            io_error(errno);
        if (n == 0)
            return ETIMEDOUT;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        io_error(errno);
    return soerr;
}

static int connect_phase(enum mode mode, const char *host, unsigned port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (!make_addr(host, port, &ss, &len) || ss.ss_family != AF_INET) {
        note("HOST must be a dotted IPv4 address: %s", host);
        exit(EXIT_OTHER);
    }
    int family = AF_INET;
    if (mode == MODE_MAPPED) {
        /* Same IPv4 address, as ::ffff:a.b.c.d on a dual-stack IPv6 socket. */
        struct sockaddr_in v4 = *(struct sockaddr_in *)&ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        memset(&ss, 0, sizeof ss);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = v4.sin_port;
        s6->sin6_addr.s6_addr[10] = 0xff;
        s6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&s6->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
        len = sizeof *s6;
        family = AF_INET6;
    }
    bool nonblocking = mode == MODE_NONBLOCK || mode == MODE_EPOLLET;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        io_error(errno);
    if (family == AF_INET6) {
        int off = 0; /* do not depend on the net.ipv6.bindv6only default */
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0)
            io_error(errno);
    }

    int rc = connect(fd, (struct sockaddr *)&ss, len);
    if (!nonblocking) {
        if (rc < 0)
            connect_error(errno);
    } else {
        int e = errno;
        if (rc == 0)
            out("CONNECT_CALL rc=0");
        else
            out("CONNECT_CALL errno=%s", errno_name(e));
        if (rc < 0 && e != EINPROGRESS)
            connect_error(e);
        if (rc < 0) {
            int soerr = wait_connected(fd, mode);
            if (soerr != 0)
                connect_error(soerr);
        }
    }

    /* A connected socket has a peer; ENOTCONN here would mean the readiness lied. */
    char local[ADDR_BUF], peer[ADDR_BUF];
    struct sockaddr_storage ps;
    socklen_t pl = sizeof ps;
    if (getpeername(fd, (struct sockaddr *)&ps, &pl) < 0)
        connect_error(errno);
    out("CONNECTED local=%s peer=%s", fmt_local(fd, local), fmt_addr((struct sockaddr *)&ps, pl, peer));
    return fd;
}

/* Streams the pattern out and checks the echo coming back, without ever blocking in a
   direction the peer cannot drain (both buffers full would deadlock a naive loop). */
static int transfer(int fd, unsigned long long total)
{
    static unsigned char sbuf[CHUNK], rbuf[CHUNK], ebuf[CHUNK];
    struct pattern tx, rx;
    pattern_init(&tx, total);
    pattern_init(&rx, total);
    unsigned long long generated = 0, sent = 0, got = 0;
    size_t spos = 0, slen = 0;
    bool shut = false;

    if (total == 0) {
        shutdown(fd, SHUT_WR);
        shut = true;
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (shut ? 0 : POLLOUT)};
        int n = poll(&p, 1, IDLE_TIMEOUT_MS);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            io_error(errno);
        }
        if (n == 0) {
            note("no progress for %d ms (sent %llu, received %llu)", IDLE_TIMEOUT_MS, sent, got);
            io_error(ETIMEDOUT);
        }

        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, rbuf, sizeof rbuf, MSG_DONTWAIT);
            if (r < 0 && errno != EAGAIN && errno != EINTR)
                io_error(errno);
            if (r == 0)
                break;
            if (r > 0) {
                size_t m = (size_t)r;
                if (got + m > total)
                    m = (size_t)(total - got); /* check what fits, then report the excess */
                pattern_fill(&rx, ebuf, m);
                for (size_t i = 0; i < m; i++)
                    if (rbuf[i] != ebuf[i]) {
                        out("MISMATCH at=%llu", got + i);
                        return EXIT_MISMATCH;
                    }
                if (m < (size_t)r) {
                    out("MISMATCH at=%llu", total);
                    return EXIT_MISMATCH;
                }
                got += m;
            }
        }

        if (!shut && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
            if (spos == slen) {
                size_t c = total - generated < CHUNK ? (size_t)(total - generated) : CHUNK;
                pattern_fill(&tx, sbuf, c);
                generated += c;
                spos = 0;
                slen = c;
            }
            ssize_t w = send(fd, sbuf + spos, slen - spos, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                io_error(errno);
            if (w > 0) {
                spos += (size_t)w;
                sent += (unsigned long long)w;
                if (sent == total) {
                    if (shutdown(fd, SHUT_WR) < 0)
                        io_error(errno);
                    shut = true;
                }
            }
        }
    }
    if (got < total) {
        out("SHORT got=%llu", got);
        return EXIT_MISMATCH;
    }
    out("OK bytes=%llu", got);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        note("usage: %s block|nonblock|epollet|mapped HOST PORT BYTES", argv[0]);
        return EXIT_OTHER;
    }
    signal(SIGPIPE, SIG_IGN);
    enum mode mode;
    if (strcmp(argv[1], "block") == 0)
        mode = MODE_BLOCK;
    else if (strcmp(argv[1], "nonblock") == 0)
        mode = MODE_NONBLOCK;
    else if (strcmp(argv[1], "epollet") == 0)
        mode = MODE_EPOLLET;
    else if (strcmp(argv[1], "mapped") == 0)
        mode = MODE_MAPPED;
    else {
        note("unknown mode %s", argv[1]);
        return EXIT_OTHER;
    }
    unsigned port = (unsigned)parse_num(argv[3], 65535, "PORT");
    unsigned long long bytes = parse_num(argv[4], 1ull << 50, "BYTES");

    int fd = connect_phase(mode, argv[2], port);
    int rc = transfer(fd, bytes);
    close(fd);
    return rc;
}
