#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define E(name) {name, #name}
static const struct {
    int value;
    const char *name;
} errno_table[] = {
    E(EPERM),        E(ENOENT),        E(EINTR),           E(EIO),
    E(EBADF),        E(EAGAIN),        E(ENOMEM),          E(EACCES),
    E(EFAULT),       E(EBUSY),         E(EEXIST),          E(EINVAL),
    E(ENFILE),       E(EMFILE),        E(ENOSPC),          E(EPIPE),
    E(ENOSYS),       E(ENOTSOCK),      E(EDESTADDRREQ),    E(EMSGSIZE),
    E(EPROTOTYPE),   E(ENOPROTOOPT),   E(EPROTONOSUPPORT), E(EOPNOTSUPP),
    E(EAFNOSUPPORT), E(EADDRINUSE),    E(EADDRNOTAVAIL),   E(ENETDOWN),
    E(ENETUNREACH),  E(ENETRESET),     E(ECONNABORTED),    E(ECONNRESET),
    E(ENOBUFS),      E(EISCONN),       E(ENOTCONN),        E(ESHUTDOWN),
    E(ETIMEDOUT),    E(ECONNREFUSED),  E(EHOSTDOWN),       E(EHOSTUNREACH),
    E(EALREADY),     E(EINPROGRESS),   E(EPROTO),          E(ENOTSUP),
    E(ERANGE),       E(ENAMETOOLONG),  E(ENXIO),           E(ENODEV),
    E(ENOTTY),
};
#undef E

const char *errno_name(int e)
{
    for (size_t i = 0; i < sizeof errno_table / sizeof errno_table[0]; i++)
        if (errno_table[i].value == e)
            return errno_table[i].name;
    static __thread char buf[24];
    snprintf(buf, sizeof buf, "E%d", e);
    return buf;
}

void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

const char *fmt_addr(const struct sockaddr *sa, socklen_t len, char *buf)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(buf, ADDR_BUF, "%s:%u", ip, ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, sizeof ip);
            snprintf(buf, ADDR_BUF, "%s:%u", ip, ntohs(s6->sin6_port));
        } else {
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
            snprintf(buf, ADDR_BUF, "[%s]:%u", ip, ntohs(s6->sin6_port));
        }
    } else {
        snprintf(buf, ADDR_BUF, "AF%d/len%u", sa->sa_family, (unsigned)len);
    }
    return buf;
}

static const char *fmt_name(int fd, bool peer, char *buf)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
                  : getsockname(fd, (struct sockaddr *)&ss, &len);
    if (rc < 0) {
        snprintf(buf, ADDR_BUF, "ERR:%s", errno_name(errno));
        return buf;
    }
    return fmt_addr((struct sockaddr *)&ss, len, buf);
}

const char *fmt_local(int fd, char *buf)
{
    return fmt_name(fd, false, buf);
}

const char *fmt_peer(int fd, char *buf)
{
    return fmt_name(fd, true, buf);
}

bool make_addr(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (strchr(host, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof *s6;
        return inet_pton(AF_INET6, host, &s6->sin6_addr) == 1;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *len = sizeof *s4;
    return inet_pton(AF_INET, host, &s4->sin_addr) == 1;
}

bool same_addr(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b, socklen_t blen)
{
    if (alen != blen || a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET && alen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6 && alen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return memcmp(a, b, alen) == 0;
}

unsigned long long parse_num(const char *s, unsigned long long max, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v > max) {
        note("bad %s: %s", what, s);
        exit(EXIT_OTHER);
    }
    return v;
}

void pattern_init(struct pattern *p, uint64_t seed)
{
    /* xorshift must not start at zero; mixing in a constant keeps small seeds distinct. */
    p->state = (seed ^ 0x9E3779B97F4A7C15ull) | 1;
    p->left = 0;
}

void pattern_fill(struct pattern *p, unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p->left == 0) {
            uint64_t x = p->state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p->state = x;
            p->word = x;
            p->left = 8;
        }
        buf[i] = (unsigned char)p->word;
        p->word >>= 8;
        p->left--;
    }
}
