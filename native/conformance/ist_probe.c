/*
 * ist_probe OWN_VIP OTHER_VIP PORT [TEST...]
 * ist_probe --list
 *
 * Edge cases of the shim's address handling that need only this node's own VIP (connections
 * to it go straight to the loopback image, no agent or other node involved); OTHER_VIP is only
 * used to check that another node's VIP cannot be bound. PORT is the port for that check and
 * must not be bound by anything else on this host's image of OWN_VIP. With TEST names, only
 * those run.
 *
 * stdout  PASS name | FAIL name detail      one line per test
 * exit    0 if every test passed, 3 if any failed, 4 on bad arguments
 */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static struct in_addr own_vip, other_vip;
static unsigned probe_port;
static int failures;

static void pass(const char *name)
{
    out("PASS %s", name);
}

static void fail(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const char *name, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    out("FAIL %s %s", name, detail);
    failures++;
}

static struct sockaddr_in v4(struct in_addr ip, unsigned port)
{
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = ip};
    return s;
}

static int tcp_socket(void)
{
    return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

/* A listener on OWN_VIP:0; *port receives the port getsockname reports. -1 on failure. */
static int own_listener(const char *name, unsigned *port)
{
    int l = tcp_socket();
    struct sockaddr_in a = v4(own_vip, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0) {
        fail(name, "listen on own VIP: %s", errno_name(errno));
        if (l >= 0)
            close(l);
        return -1;
    }
    struct sockaddr_in got;
    socklen_t len = sizeof got;
    if (getsockname(l, (struct sockaddr *)&got, &len) < 0) {
        fail(name, "getsockname: %s", errno_name(errno));
        close(l);
        return -1;
    }
    *port = ntohs(got.sin_port);
    return l;
}

/* A blocking client connected to OWN_VIP:port, or -1 (and a FAIL line). */
static int own_client(const char *name, unsigned port)
{
    int c = tcp_socket();
    struct sockaddr_in a = v4(own_vip, port);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0) {
        fail(name, "connect to own VIP: %s", errno_name(errno));
        if (c >= 0)
            close(c);
        return -1;
    }
    return c;
}

static bool is_own(const struct sockaddr_in *a)
{
    return a->sin_family == AF_INET && a->sin_addr.s_addr == own_vip.s_addr;
}

/* bind(OWN_VIP:0), then getsockname shows OWN_VIP with a port the kernel picked. */
static void test_bind_own(const char *name)
{
    int s = tcp_socket();
    struct sockaddr_in a = v4(own_vip, 0), got;
    socklen_t len = sizeof got;
    char buf[ADDR_BUF];
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0)
        fail(name, "bind: %s", errno_name(errno));
    else if (getsockname(s, (struct sockaddr *)&got, &len) < 0)
        fail(name, "getsockname: %s", errno_name(errno));
    else if (len != sizeof got || !is_own(&got) || got.sin_port == 0)
        fail(name, "getsockname=%s len=%u", fmt_addr((struct sockaddr *)&got, len, buf), (unsigned)len);
    else
        pass(name);
    if (s >= 0)
        close(s);
}

/* The same through a dual-stack AF_INET6 socket and ::ffff:OWN_VIP. */
static void test_bind_own_mapped(const char *name)
{
    int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int off = 0;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6}, got;
    a.sin6_addr.s6_addr[10] = a.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&a.sin6_addr.s6_addr[12], &own_vip, 4);
    socklen_t len = sizeof got;
    char buf[ADDR_BUF];
    if (s < 0 || setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0 ||
        bind(s, (struct sockaddr *)&a, sizeof a) < 0)
        fail(name, "bind: %s", errno_name(errno));
    else if (getsockname(s, (struct sockaddr *)&got, &len) < 0)
        fail(name, "getsockname: %s", errno_name(errno));
    else if (len != sizeof got || got.sin6_family != AF_INET6 ||
             memcmp(&got.sin6_addr, &a.sin6_addr, sizeof a.sin6_addr) != 0 || got.sin6_port == 0)
        fail(name, "getsockname=%s len=%u", fmt_addr((struct sockaddr *)&got, len, buf), (unsigned)len);
    else
        pass(name);
    if (s >= 0)
        close(s);
}

/* Another node's VIP is not an address of this host. */
static void test_bind_other(const char *name)
{
    int s = tcp_socket();
    struct sockaddr_in a = v4(other_vip, probe_port);
    int rc = s < 0 ? -1 : bind(s, (struct sockaddr *)&a, sizeof a);
    if (rc == 0)
        fail(name, "bind succeeded");
    else if (errno != EADDRNOTAVAIL)
        fail(name, "errno=%s", errno_name(errno));
    else
        pass(name);
    if (s >= 0)
        close(s);
}

/* Connect to our own VIP (direct to the image) and check every name on both ends. */
static void test_own_connect_names(const char *name)
{
    unsigned port;
    int l = own_listener(name, &port);
    if (l < 0)
        return;
    int c = own_client(name, port);
    if (c >= 0) {
        struct sockaddr_in acc, cl, cp, sl, sp;
        socklen_t al = sizeof acc, l1 = sizeof cl, l2 = sizeof cp, l3 = sizeof sl, l4 = sizeof sp;
        char b1[ADDR_BUF], b2[ADDR_BUF];
        int a = accept(l, (struct sockaddr *)&acc, &al);
        if (a < 0)
            fail(name, "accept: %s", errno_name(errno));
        else if (getsockname(c, (struct sockaddr *)&cl, &l1) < 0 ||
                 getpeername(c, (struct sockaddr *)&cp, &l2) < 0 ||
                 getsockname(a, (struct sockaddr *)&sl, &l3) < 0 ||
                 getpeername(a, (struct sockaddr *)&sp, &l4) < 0)
            fail(name, "names: %s", errno_name(errno));
        else if (!is_own(&cl) || !is_own(&cp) || ntohs(cp.sin_port) != port)
            fail(name, "client local=%s peer=%s", fmt_addr((struct sockaddr *)&cl, l1, b1),
                 fmt_addr((struct sockaddr *)&cp, l2, b2));
        else if (!is_own(&sl) || ntohs(sl.sin_port) != port || !same_addr((struct sockaddr *)&sp, l4, (struct sockaddr *)&cl, l1))
            fail(name, "server local=%s peer=%s", fmt_addr((struct sockaddr *)&sl, l3, b1),
                 fmt_addr((struct sockaddr *)&sp, l4, b2));
        else if (!same_addr((struct sockaddr *)&acc, al, (struct sockaddr *)&sp, l4))
            fail(name, "accept=%s getpeername=%s", fmt_addr((struct sockaddr *)&acc, al, b1),
                 fmt_addr((struct sockaddr *)&sp, l4, b2));
        else
            pass(name);
        if (a >= 0)
            close(a);
        close(c);
    }
    close(l);
}

/* accept(fd, NULL, NULL) must work and not touch anything. */
static void test_accept_null(const char *name)
{
    unsigned port;
    int l = own_listener(name, &port);
    if (l < 0)
        return;
    int c = own_client(name, port);
    if (c >= 0) {
        int a = accept(l, NULL, NULL);
        if (a < 0)
            fail(name, "accept: %s", errno_name(errno));
        else
            pass(name);
        if (a >= 0)
            close(a);
        close(c);
    }
    close(l);
}

/* accept with *addrlen = 4: 4 bytes copied (the start of the full address), 16 reported. */
static void test_accept_short(const char *name)
{
    unsigned port;
    int l = own_listener(name, &port);
    if (l < 0)
        return;
    int c = own_client(name, port);
    if (c >= 0) {
        unsigned char buf[sizeof(struct sockaddr_in)];
        memset(buf, 0xAA, sizeof buf);
        socklen_t len = 4;
        int a = accept(l, (struct sockaddr *)buf, &len);
        struct sockaddr_in full;
        socklen_t fl = sizeof full;
        if (a < 0)
            fail(name, "accept: %s", errno_name(errno));
        else if (len != sizeof(struct sockaddr_in))
            fail(name, "reported length %u, want %zu", (unsigned)len, sizeof(struct sockaddr_in));
        else if (getpeername(a, (struct sockaddr *)&full, &fl) < 0)
            fail(name, "getpeername: %s", errno_name(errno));
        else if (memcmp(buf, &full, 4) != 0)
            fail(name, "copied bytes differ from the full address");
        else if (buf[4] != 0xAA || buf[sizeof buf - 1] != 0xAA)
            fail(name, "wrote past the 4 bytes allowed");
        else if (!is_own(&full))
            fail(name, "peer is not the own VIP");
        else
            pass(name);
        if (a >= 0)
            close(a);
        close(c);
    }
    close(l);
}

/* getsockname with a short buffer behaves the same way. */
static void test_getsockname_short(const char *name)
{
    int s = tcp_socket();
    struct sockaddr_in a = v4(own_vip, 0), full;
    unsigned char buf[sizeof(struct sockaddr_in)];
    memset(buf, 0xAA, sizeof buf);
    socklen_t len = 6, fl = sizeof full;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0)
        fail(name, "bind: %s", errno_name(errno));
    else if (getsockname(s, (struct sockaddr *)buf, &len) < 0 ||
             getsockname(s, (struct sockaddr *)&full, &fl) < 0)
        fail(name, "getsockname: %s", errno_name(errno));
    else if (len != sizeof full || memcmp(buf, &full, 6) != 0 || buf[6] != 0xAA)
        fail(name, "len=%u or bytes wrong", (unsigned)len);
    else
        pass(name);
    if (s >= 0)
        close(s);
}

static void test_getpeername_unconnected(const char *name)
{
    int s = tcp_socket();
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int rc = s < 0 ? -1 : getpeername(s, (struct sockaddr *)&a, &len);
    if (rc == 0)
        fail(name, "getpeername succeeded");
    else if (errno != ENOTCONN)
        fail(name, "errno=%s", errno_name(errno));
    else
        pass(name);
    if (s >= 0)
        close(s);
}

/* Connecting to a port of our own VIP that nobody listens on is refused, as on loopback. */
static void test_own_refused(const char *name)
{
    /* A port bound but not listening is reserved and certain to refuse. */
    int hold = tcp_socket();
    struct sockaddr_in a = v4(own_vip, 0);
    socklen_t len = sizeof a;
    if (hold < 0 || bind(hold, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(hold, (struct sockaddr *)&a, &len) < 0) {
        fail(name, "reserve port: %s", errno_name(errno));
    } else {
        int c = tcp_socket();
        int rc = c < 0 ? -1 : connect(c, (struct sockaddr *)&a, sizeof a);
        if (rc == 0)
            fail(name, "connect succeeded");
        else if (errno != ECONNREFUSED)
            fail(name, "errno=%s", errno_name(errno));
        else
            pass(name);
        if (c >= 0)
            close(c);
    }
    if (hold >= 0)
        close(hold);
}

/*
 * A child that closes every fd from 3 up (as ssh and daemons do) can still connect: the shim
 * holds no fd that close_range could break.
 */
static void test_close_range(const char *name)
{
    unsigned port;
    int l = own_listener(name, &port);
    if (l < 0)
        return;
    pid_t pid = fork();
    if (pid < 0) {
        fail(name, "fork: %s", errno_name(errno));
        close(l);
        return;
    }
    if (pid == 0) {
#ifdef SYS_close_range
        if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0)
            _exit(10);
#else
        _exit(11);
#endif
        int c = tcp_socket();
        struct sockaddr_in a = v4(own_vip, port);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0)
            _exit(12);
        if (write(c, "x", 1) != 1)
            _exit(13);
        _exit(0);
    }
    struct pollfd p = {.fd = l, .events = POLLIN};
    int ready = poll(&p, 1, 10000);
    int a = ready > 0 ? accept(l, NULL, NULL) : -1;
    char ch = 0;
    ssize_t r = a >= 0 ? read(a, &ch, 1) : -1;
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail(name, "child status %d (10 close_range, 11 unsupported, 12 connect, 13 write)",
             WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    else if (a < 0 || r != 1 || ch != 'x')
        fail(name, "listener did not receive the child's connection");
    else
        pass(name);
    if (a >= 0)
        close(a);
    close(l);
}

static const struct {
    const char *name;
    void (*run)(const char *);
} tests[] = {
    {"bind-own", test_bind_own},
    {"bind-own-mapped", test_bind_own_mapped},
    {"bind-other", test_bind_other},
    {"own-connect-names", test_own_connect_names},
    {"accept-null", test_accept_null},
    {"accept-short", test_accept_short},
    {"getsockname-short", test_getsockname_short},
    {"getpeername-unconnected", test_getpeername_unconnected},
    {"own-refused", test_own_refused},
    {"close-range", test_close_range},
};
#define NTESTS (sizeof tests / sizeof tests[0])

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NTESTS; i++)
            out("%s", tests[i].name);
        return EXIT_OK;
    }
    if (argc < 4 || inet_pton(AF_INET, argv[1], &own_vip) != 1 ||
        inet_pton(AF_INET, argv[2], &other_vip) != 1) {
        note("usage: %s OWN_VIP OTHER_VIP PORT [TEST...] | --list", argv[0]);
        return EXIT_OTHER;
    }
    probe_port = (unsigned)parse_num(argv[3], 65535, "PORT");

    for (int i = 4; i < argc; i++) {
        bool known = false;
        for (size_t t = 0; t < NTESTS; t++)
            known = known || strcmp(argv[i], tests[t].name) == 0;
        if (!known) {
            note("unknown test %s (see --list)", argv[i]);
            return EXIT_OTHER;
        }
    }
    for (size_t t = 0; t < NTESTS; t++) {
        bool selected = argc == 4;
        for (int i = 4; i < argc; i++)
            selected = selected || strcmp(argv[i], tests[t].name) == 0;
        if (selected)
            tests[t].run(tests[t].name);
    }
    return failures == 0 ? EXIT_OK : EXIT_MISMATCH;
}
