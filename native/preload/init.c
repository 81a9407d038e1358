/*
 * Shim start-up: resolve the real libc functions and read the environment set by `isthmus run`
 * (docs/ARCHITECTURE.md, "Environment set by isthmus run for the shim").
 *
 * Both happen exactly once, from the constructor or, if a hook runs first (another library's
 * constructor calling connect, say), from that hook; pthread_once makes that race-free. If the
 * environment is absent or malformed the shim stays disabled and every hook passes through.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>

#include "shim.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct shim_config shim_cfg;
struct shim_real shim_real;

static pthread_once_t shim_once = PTHREAD_ONCE_INIT;
/* Initial-exec: reading it must not allocate (a dynamic TLS access may), see shim.h. */
static __thread bool initialising __attribute__((tls_model("initial-exec")));

bool shim_initialising(void)
{
    return initialising;
}

void shim_log(const char *fmt, ...)
{
    if (!shim_cfg.debug)
        return;
    int saved = errno;
    /* Format on the stack and write(2) once: no stdio buffers, no allocation, and one line
       stays one write even when several threads log. */
    char line[512];
    int n = snprintf(line, sizeof line, "isthmus-preload[%d]: ", (int)getpid());
    if (n < 0)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
    errno = saved;
}

/* Strict dotted quad (inet_pton accepts nothing else for AF_INET). */
static bool parse_ipv4(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return false;
    *out = a.s_addr;
    return true;
}

/* Decimal integer in [lo, hi], nothing else in the string. */
static bool parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Copies "head<sep>tail" into buf and splits it at the last sep. */
static bool split_last(const char *s, char sep, char *buf, size_t size, char **tail)
{
    size_t len = strlen(s);
    if (len >= size)
        return false;
    memcpy(buf, s, len + 1);
    char *p = strrchr(buf, sep);
    if (p == NULL)
        return false;
    *p = '\0';
    *tail = p + 1;
    return true;
}

/* Letters, digits, '-', '_' and '.', with no empty label. */
static bool dns_name_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.') {
            if (i == 0 || s[i - 1] == '.')
                return false;
        } else if (!isalnum(ch) && ch != '-' && ch != '_') {
            return false;
        }
    }
    return len > 0 && s[len - 1] != '.';
}

/* Returns NULL when the configuration is usable, else the reason it is not. */
static const char *load_config(struct shim_config *c)
{
    const char *vip = getenv("ISTHMUS_VIP");
    const char *network = getenv("ISTHMUS_NETWORK");
    const char *image = getenv("ISTHMUS_IMAGE");
    const char *data = getenv("ISTHMUS_DATA");
    const char *sock = getenv("ISTHMUS_AGENT_SOCKET");
    if (!vip && !network && !image && !data && !sock)
        return "no ISTHMUS_* environment";
    if (!vip || !network || !image || !data || !sock)
        return "incomplete ISTHMUS_* environment";

    if (!parse_ipv4(vip, &c->own_vip))
        return "ISTHMUS_VIP is not an IPv4 address";

    char buf[64];
    char *tail;
    unsigned long v;
    if (!split_last(network, '/', buf, sizeof buf, &tail) || !parse_ipv4(buf, &c->net) ||
        !parse_uint(tail, 1, 32, &v))
        return "ISTHMUS_NETWORK is not ADDRESS/PREFIX";
    c->mask = htonl((uint32_t)(0xffffffffu << (32 - v)));
    if ((c->net & ~c->mask) != 0)
        return "ISTHMUS_NETWORK has host bits set";
    if ((c->own_vip & c->mask) != c->net)
        return "ISTHMUS_VIP is outside ISTHMUS_NETWORK";

    if (!parse_ipv4(image, &c->image_base))
        return "ISTHMUS_IMAGE is not an IPv4 address";
    /* The image must be a block of 127/8 aligned like the network, so that OR-ing host bits
       in is a bijection that never leaves the loopback range. */
    if ((ntohl(c->image_base) >> 24) != 127 || (c->image_base & ~c->mask) != 0 ||
        ntohl(c->mask) < 0xff000000u)
        return "ISTHMUS_IMAGE is not an aligned block of 127/8";

    if (!split_last(data, ':', buf, sizeof buf, &tail) || !parse_ipv4(buf, &c->data_ip) ||
        !parse_uint(tail, 1, 65535, &v))
        return "ISTHMUS_DATA is not IPv4:PORT";
    c->data_port = htons((uint16_t)v);
    /* A data endpoint inside the image block would make agent connections look like peers. */
    if ((c->data_ip & c->mask) == c->image_base)
        return "ISTHMUS_DATA lies inside the image block";

    size_t plen = strlen(sock);
    if (plen == 0 || plen >= sizeof c->agent_path)
        return "ISTHMUS_AGENT_SOCKET is empty or too long";
    memcpy(c->agent_path, sock, plen + 1);

    /* Optional. Kept in the form names are compared in (lower case, no trailing dot), so
       lookups need no normalising of it. */
    const char *cluster = getenv("ISTHMUS_CLUSTER");
    if (cluster != NULL && cluster[0] != '\0') {
        size_t len = strlen(cluster);
        if (cluster[len - 1] == '.')
            len--;
        if (len == 0 || len >= sizeof c->cluster || !dns_name_chars(cluster, len))
            return "ISTHMUS_CLUSTER is not a DNS name";
        for (size_t i = 0; i < len; i++)
            c->cluster[i] = (char)tolower((unsigned char)cluster[i]);
        c->cluster[len] = '\0';
    }
    /* Optional: the agent offers kernel-direct LAN streams (DIRECT, ADOPT, LISTEN). */
    const char *direct = getenv("ISTHMUS_DIRECT");
    c->direct = direct != NULL && strcmp(direct, "1") == 0;
    /* Optional; the kernel's limit for a host name is 64 bytes (HOST_NAME_MAX). */
    const char *host = getenv("ISTHMUS_HOSTNAME");
    if (host != NULL && host[0] != '\0') {
        size_t len = strlen(host);
        if (len >= sizeof c->hostname || !dns_name_chars(host, len))
            return "ISTHMUS_HOSTNAME is not a host name of at most 64 bytes";
        memcpy(c->hostname, host, len + 1);
    }
    return NULL;
}

static void *resolve(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (p == NULL)
        shim_log("cannot resolve %s; it will fail with ENOSYS", name);
    return p;
}

static void shim_init_once(void)
{
    int saved = errno;
    initialising = true;
    const char *dbg = getenv("ISTHMUS_DEBUG");
    shim_cfg.debug = dbg != NULL && strcmp(dbg, "1") == 0;

    /* dlsym returns void *; converting through a union keeps the object-to-function pointer
       conversion explicit. */
#define RESOLVE(field, name)                                                                  \
    do {                                                                                      \
        union {                                                                               \
            void *p;                                                                          \
            __typeof__(shim_real.field) f;                                                    \
        } u_ = {.p = resolve(name)};                                                          \
        shim_real.field = u_.f;                                                               \
    } while (0)
    /* syscall first: it is the one hook that may run inside the dlsym calls below. */
    RESOLVE(syscall, "syscall");
    RESOLVE(connect, "connect");
    RESOLVE(bind, "bind");
    RESOLVE(getsockname, "getsockname");
    RESOLVE(getpeername, "getpeername");
    RESOLVE(accept, "accept");
    RESOLVE(accept4, "accept4");
    RESOLVE(listen, "listen");
    RESOLVE(sendto, "sendto");
    RESOLVE(sendmsg, "sendmsg");
    RESOLVE(sendmmsg, "sendmmsg");
    RESOLVE(recvfrom, "recvfrom");
    RESOLVE(recvmsg, "recvmsg");
    RESOLVE(recvmmsg, "recvmmsg");
    RESOLVE(recvfrom_chk, "__recvfrom_chk");
    RESOLVE(getaddrinfo, "getaddrinfo");
    RESOLVE(getnameinfo, "getnameinfo");
    RESOLVE(gethostbyname, "gethostbyname");
    RESOLVE(gethostbyname2, "gethostbyname2");
    RESOLVE(gethostbyname_r, "gethostbyname_r");
    RESOLVE(gethostbyname2_r, "gethostbyname2_r");
    RESOLVE(gethostbyaddr, "gethostbyaddr");
    RESOLVE(gethostbyaddr_r, "gethostbyaddr_r");
    RESOLVE(gethostname, "gethostname");
    RESOLVE(uname, "uname");
    RESOLVE(getifaddrs, "getifaddrs");
    RESOLVE(freeifaddrs, "freeifaddrs");
    RESOLVE(ioctl, "ioctl");
    RESOLVE(if_nametoindex, "if_nametoindex");
    RESOLVE(if_indextoname, "if_indextoname");
    RESOLVE(if_nameindex, "if_nameindex");
#undef RESOLVE

    struct shim_config c = shim_cfg;
    const char *why = load_config(&c);
    if (why != NULL) {
        shim_log("pass-through: %s", why);
    } else {
        c.enabled = true;
        shim_cfg = c;
        char v[16], n[16], i[16], d[16];
        shim_log("enabled: vip=%s network=%s/%d image=%s data=%s:%u agent=%s cluster=%s "
                 "hostname=%s",
                 addr_str(c.own_vip, v), addr_str(c.net, n), __builtin_popcount(c.mask),
                 addr_str(c.image_base, i), addr_str(c.data_ip, d), ntohs(c.data_port),
                 c.agent_path, c.cluster[0] ? c.cluster : "-", c.hostname[0] ? c.hostname : "-");
    }
    initialising = false;
    errno = saved;
}

void shim_init(void)
{
    pthread_once(&shim_once, shim_init_once);
}

__attribute__((constructor)) static void shim_constructor(void)
{
    shim_init();
}
