/*
 * ist_server MODE ADDR PORT [MAXCONN]
 *
 * Echo server (read to EOF, write everything back, shutdown(SHUT_WR), close) in three process
 * models that exercise different parts of the shim:
 *
 * MODE  fork   one child per connection (blocking I/O)
 *       epoll  one process: non-blocking listener, epoll, accept4(SOCK_NONBLOCK|SOCK_CLOEXEC)
 *              until EAGAIN, flags checked on every accepted fd, non-blocking echo
 *       exec   inetd style: fork, dup2 the connection onto fds 0 and 1, execv this program as
 *              `ist_server --inetd-child`, which reports getpeername/getsockname of fd 0 on
 *              stderr ("CHILD peer=IP:PORT local=IP:PORT") and echoes stdin to stdout
 *
 * ADDR is 0.0.0.0, a VIP, or :: (dual-stack AF_INET6). PORT 0 picks a free port. The server
 * exits once MAXCONN connections have been fully served (0 or absent: never).
 *
 * stdout  LISTENING IP:PORT
 *         ACCEPT peer=IP:PORT local=IP:PORT             per connection
 *         ERROR accept-addr-mismatch accept=.. peer=..  accept's address != getpeername's
 *         ERROR flags                                   epoll: accepted fd lacks O_NONBLOCK/FD_CLOEXEC (exit 4)
 *         DONE peer=IP:PORT bytes=N                     a connection fully echoed (fork, epoll)
 *         IO_ERROR errno=NAME peer=IP:PORT              a connection failed
 *         BIND_ERROR errno=NAME | LISTEN_ERROR errno=NAME   exit 2
 * exit    0 all served connections were fine, 4 otherwise
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#define ECHO_BUF 65536

static bool failed; /* any connection went wrong: exit 4 at the end */

static void fatal(const char *what, int e)
{
    out("IO_ERROR errno=%s op=%s", errno_name(e), what);
    exit(EXIT_OTHER);
}

static int listen_on(const char *host, unsigned port, bool nonblocking)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (!make_addr(host, port, &ss, &len)) {
        note("bad ADDR %s", host);
        exit(EXIT_OTHER);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        fatal("socket", errno);
    int one = 1, off = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0)
        fatal("setsockopt(IPV6_V6ONLY)", errno);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        out("BIND_ERROR errno=%s", errno_name(errno));
        exit(EXIT_CONNECT);
    }
    if (listen(fd, 128) < 0) {
        out("LISTEN_ERROR errno=%s", errno_name(errno));
        exit(EXIT_CONNECT);
    }
    char buf[ADDR_BUF];
    out("LISTENING %s", fmt_local(fd, buf)); /* getsockname: shows the real port for PORT 0 */
    return fd;
}

/* Prints ACCEPT and checks that accept's address is the one getpeername reports. */
static void report_accept(int cfd, const struct sockaddr_storage *ss, socklen_t sl, char *peer)
{
    char local[ADDR_BUF], acc[ADDR_BUF];
    struct sockaddr_storage ps;
    socklen_t pl = sizeof ps;
    if (getpeername(cfd, (struct sockaddr *)&ps, &pl) < 0) {
        snprintf(peer, ADDR_BUF, "ERR:%s", errno_name(errno));
        failed = true;
    } else {
        fmt_addr((struct sockaddr *)&ps, pl, peer);
        if (!same_addr((const struct sockaddr *)ss, sl, (struct sockaddr *)&ps, pl)) {
            out("ERROR accept-addr-mismatch accept=%s peer=%s",
                fmt_addr((const struct sockaddr *)ss, sl, acc), peer);
            failed = true;
        }
    }
    out("ACCEPT peer=%s local=%s", peer, fmt_local(cfd, local));
}

static int accept_one(int lfd, int flags, struct sockaddr_storage *ss, socklen_t *sl)
{
    for (;;) {
        *sl = sizeof *ss;
        int cfd = flags < 0 ? accept(lfd, (struct sockaddr *)ss, sl)
                            : accept4(lfd, (struct sockaddr *)ss, sl, flags);
        if (cfd >= 0 || (errno != EINTR && errno != ECONNABORTED))
            return cfd;
    }
}

/* Blocking echo between in and out (the same socket except for the inetd child). */
static int echo_blocking(int in, int outfd, unsigned long long *bytes, int *error)
{
    static unsigned char buf[ECHO_BUF];
    *bytes = 0;
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *error = errno;
            return -1;
        }
        if (r == 0)
            break;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(outfd, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                *error = errno;
                return -1;
            }
            off += w;
        }
        *bytes += (unsigned long long)r;
    }
    if (shutdown(outfd, SHUT_WR) < 0) {
        *error = errno;
        return -1;
    }
    return 0;
}

/* Collects finished children; a child that failed makes the whole run fail. */
static void reap(bool block, unsigned *running)
{
    int status;
    pid_t pid;
    while (*running > 0 && (pid = waitpid(-1, &status, block ? 0 : WNOHANG)) > 0) {
        (*running)--;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed = true;
    }
}

/* What the inetd child execs: argv[0] when it is a path (also right under valgrind and
   similar wrappers, where /proc/self/exe is the wrapper), else the running binary. */
static const char *self_path = "/proc/self/exe";

static int run_forking(int lfd, unsigned long long maxconn, bool exec_child)
{
    unsigned long long accepted = 0;
    unsigned running = 0;
    while (maxconn == 0 || accepted < maxconn) {
        struct sockaddr_storage ss;
        socklen_t sl;
        int cfd = accept_one(lfd, -1, &ss, &sl);
        if (cfd < 0)
            fatal("accept", errno);
        char peer[ADDR_BUF];
        report_accept(cfd, &ss, sl, peer);
        accepted++;

        pid_t pid = fork();
        if (pid < 0)
            fatal("fork", errno);
        if (pid == 0) {
            close(lfd);
            if (exec_child) {
                /* inetd: the connection becomes stdin and stdout of a fresh image of us. */
                if (dup2(cfd, 0) < 0 || dup2(cfd, 1) < 0)
                    _exit(EXIT_OTHER);
                if (cfd > 1)
                    close(cfd);
                char *args[] = {"ist_server", "--inetd-child", NULL};
                execv(self_path, args);
                note("execv: %s", errno_name(errno));
                _exit(EXIT_OTHER);
            }
            unsigned long long bytes;
            int e = 0;
            if (echo_blocking(cfd, cfd, &bytes, &e) < 0) {
                out("IO_ERROR errno=%s peer=%s", errno_name(e), peer);
                _exit(EXIT_OTHER);
            }
            close(cfd);
            out("DONE peer=%s bytes=%llu", peer, bytes);
            _exit(EXIT_OK);
        }
        close(cfd);
        running++;
        reap(false, &running);
    }
    reap(true, &running);
    return failed ? EXIT_OTHER : EXIT_OK;
}

/* The exec'd half of the inetd mode: fd 0 and fd 1 are the connection; stdout is not ours. */
static int inetd_child(void)
{
    char peer[ADDR_BUF], local[ADDR_BUF];
    note("CHILD peer=%s local=%s", fmt_peer(0, peer), fmt_local(0, local));
    unsigned long long bytes;
    int e = 0;
    if (echo_blocking(0, 1, &bytes, &e) < 0) {
        note("CHILD IO_ERROR errno=%s", errno_name(e));
        return EXIT_OTHER;
    }
    return EXIT_OK;
}

struct conn {
    int fd;
    bool eof;            /* peer has half-closed: no more reads */
    size_t head, len;    /* pending echo bytes are buf[head, head+len) */
    unsigned long long bytes;
    char peer[ADDR_BUF];
    unsigned char buf[ECHO_BUF];
};

static void conn_close(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* One read and one write per readiness event; level-triggered epoll calls us again. Returns
   true when the connection is finished (fully echoed or failed) and has been closed. */
static bool conn_service(int ep, struct conn *c)
{
    if (!c->eof && c->head + c->len < sizeof c->buf) {
        ssize_t r = read(c->fd, c->buf + c->head + c->len, sizeof c->buf - c->head - c->len);
        if (r > 0) {
            c->len += (size_t)r;
            c->bytes += (unsigned long long)r;
        } else if (r == 0) {
            c->eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
            out("IO_ERROR errno=%s peer=%s", errno_name(errno), c->peer);
            failed = true;
            conn_close(ep, c);
            return true;
        }
    }
    if (c->len > 0) {
        ssize_t w = write(c->fd, c->buf + c->head, c->len);
        if (w > 0) {
            c->head += (size_t)w;
            c->len -= (size_t)w;
            if (c->len == 0)
                c->head = 0;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            out("IO_ERROR errno=%s peer=%s", errno_name(errno), c->peer);
            failed = true;
            conn_close(ep, c);
            return true;
        }
    }
    if (c->eof && c->len == 0) {
        if (shutdown(c->fd, SHUT_WR) < 0) {
            out("IO_ERROR errno=%s peer=%s", errno_name(errno), c->peer);
            failed = true;
        } else {
            out("DONE peer=%s bytes=%llu", c->peer, c->bytes);
        }
        conn_close(ep, c);
        return true;
    }
    if (c->head > 0 && c->head + c->len == sizeof c->buf) {
        memmove(c->buf, c->buf + c->head, c->len); /* make room to read at the end */
        c->head = 0;
    }
    /* Read while there is room and input left; write while something is pending. */
    struct epoll_event ev = {.data.ptr = c};
    if (!c->eof && c->head + c->len < sizeof c->buf)
        ev.events |= EPOLLIN;
    if (c->len > 0)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        fatal("epoll_ctl", errno);
    return false;
}

static int run_epoll(int lfd, unsigned long long maxconn)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        fatal("epoll_create1", errno);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        fatal("epoll_ctl", errno);
    unsigned long long accepted = 0, finished = 0;
    bool listening = true;

    while (maxconn == 0 || finished < maxconn) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fatal("epoll_wait", errno);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c != NULL) {
                if (conn_service(ep, c))
                    finished++;
                continue;
            }
            /* The listener: drain the accept queue, as event loops do. */
            while (listening) {
                struct sockaddr_storage ss;
                socklen_t sl;
                int cfd = accept_one(lfd, SOCK_NONBLOCK | SOCK_CLOEXEC, &ss, &sl);
                if (cfd < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK)
                        break;
                    fatal("accept4", errno);
                }
                int fl = fcntl(cfd, F_GETFL), fdfl = fcntl(cfd, F_GETFD);
                if (fl < 0 || !(fl & O_NONBLOCK) || fdfl < 0 || !(fdfl & FD_CLOEXEC)) {
                    out("ERROR flags");
                    exit(EXIT_OTHER);
                }
                c = calloc(1, sizeof *c);
                if (c == NULL)
                    fatal("calloc", ENOMEM);
                c->fd = cfd;
                report_accept(cfd, &ss, sl, c->peer);
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0)
                    fatal("epoll_ctl", errno);
                if (maxconn != 0 && ++accepted == maxconn) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
                    listening = false;
                }
            }
        }
    }
    return failed ? EXIT_OTHER : EXIT_OK;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 2 && strcmp(argv[1], "--inetd-child") == 0)
        return inetd_child();
    if (argc != 4 && argc != 5) {
        note("usage: %s fork|epoll|exec ADDR PORT [MAXCONN]", argv[0]);
        return EXIT_OTHER;
    }
    const char *mode = argv[1];
    if (strchr(argv[0], '/') != NULL)
        self_path = argv[0];
    unsigned port = (unsigned)parse_num(argv[3], 65535, "PORT");
    unsigned long long maxconn = argc == 5 ? parse_num(argv[4], ~0ull, "MAXCONN") : 0;

    if (strcmp(mode, "fork") == 0)
        return run_forking(listen_on(argv[2], port, false), maxconn, false);
    if (strcmp(mode, "exec") == 0)
        return run_forking(listen_on(argv[2], port, false), maxconn, true);
    if (strcmp(mode, "epoll") == 0)
        return run_epoll(listen_on(argv[2], port, true), maxconn);
    note("unknown mode %s", mode);
    return EXIT_OTHER;
}
