/*
 * Host name lookups: getaddrinfo, gethostbyname(2)(_r), gethostbyaddr(_r), getnameinfo.
 *
 * Overlay names (see names.c for which names are asked about) resolve to their node's VIP and
 * canonical name NODE.SITE.CLUSTER; VIPs reverse-resolve to the canonical name. Everything the
 * agent does not answer goes to the real function untouched.
 *
 * getaddrinfo never builds a list itself: it calls the real getaddrinfo on the VIP's dotted
 * string with AI_NUMERICHOST, so libc expands families, socket types, protocols and services
 * exactly as it does for any address, and the list stays libc's to free. The only change is
 * ai_canonname of the first entry, set with strdup: glibc's freeaddrinfo free()s every
 * ai_canonname (sysdeps/posix/getaddrinfo.c), and AI_CANONNAME is removed from the real call so
 * there is no libc-made name to replace.
 *
 * Overlay nodes have IPv4 addresses only. An AF_INET6 query for an overlay name fails the way it
 * does for a DNS name with only an A record (EAI_NODATA, h_errno NO_DATA), unless AI_V4MAPPED
 * asks for ::ffff:VIP. That is what makes `getent hosts NODE` (AF_INET6 first, then AF_INET)
 * print the VIP.
 *
 * Not _GNU_SOURCE, for the reason given at the top of hooks_connect.c.
 */
#undef _GNU_SOURCE
#define _DEFAULT_SOURCE 1
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* glibc's values; its header defines them only under _GNU_SOURCE. */
#ifndef EAI_NODATA
#define EAI_NODATA -5
#endif

/* ---- getaddrinfo ------------------------------------------------------------------------ */

SHIM_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                            struct addrinfo **res)
{
    shim_init();
    if (shim_real.getaddrinfo == NULL)
        return EAI_SYSTEM; /* errno: the hook could not find libc's function */
    int family = hints != NULL ? hints->ai_family : AF_UNSPEC;
    /* glibc treats NULL hints as AI_V4MAPPED | AI_ADDRCONFIG with everything else zero. */
    int flags = hints != NULL ? hints->ai_flags : (AI_V4MAPPED | AI_ADDRCONFIG);
    uint32_t vip;
    char canon[NAMES_CANON_SIZE];
    bool nxdomain = false;
    if ((flags & AI_NUMERICHOST) ||
        (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) ||
        !names_is_candidate(node) || !names_resolve(node, &vip, canon, &nxdomain))
        return nxdomain ? EAI_NONAME : shim_real.getaddrinfo(node, service, hints, res);

    if (family == AF_INET6 && !(flags & AI_V4MAPPED))
        return EAI_NODATA;

    struct addrinfo h;
    if (hints != NULL)
        h = *hints;
    else {
        memset(&h, 0, sizeof h);
        h.ai_family = AF_UNSPEC;
    }
    /* AI_ADDRCONFIG would consult the host's real interfaces, but the VIP belongs to the
       virtual isthmus0, which is always there: an overlay name always has its IPv4 address. */
    h.ai_flags = (flags | AI_NUMERICHOST) & ~(AI_ADDRCONFIG | AI_CANONNAME);
    char text[INET_ADDRSTRLEN];
    addr_str(vip, text);
    int rc = shim_real.getaddrinfo(text, service, &h, res);
    if (rc != 0 || !(flags & AI_CANONNAME))
        return rc;
    char *dup = strdup(canon);
    if (dup == NULL) {
        freeaddrinfo(*res);
        *res = NULL;
        return EAI_MEMORY;
    }
    (*res)->ai_canonname = dup;
    return 0;
}

/* ---- hostent ---------------------------------------------------------------------------- */

/*
 * Lays out a one-address hostent in buf (pointer arrays first, for their alignment). The name
 * as asked becomes an alias when it is not the canonical name, as a hosts-file line would
 * show it. Returns 0 or ERANGE.
 */
static int build_hostent(struct hostent *h, char *buf, size_t buflen, const char *canon,
                         const char *asked, int af, const void *addr)
{
    size_t alen = af == AF_INET6 ? 16 : 4;
    size_t clen = strlen(canon) + 1;
    size_t asklen = 0;
    if (asked != NULL) {
        asklen = strlen(asked);
        if (asklen > 0 && asked[asklen - 1] == '.')
            asklen--;
        if (asklen + 1 == clen && strncasecmp(asked, canon, asklen) == 0)
            asklen = 0;
    }
    size_t pad = (alignof(char *) - (uintptr_t)buf % alignof(char *)) % alignof(char *);
    size_t need = pad + 4 * sizeof(char *) + alen + clen + (asklen > 0 ? asklen + 1 : 0);
    if (buf == NULL || need > buflen)
        return ERANGE;
    char **ptrs = (char **)(void *)(buf + pad);
    char *p = (char *)(ptrs + 4);
    memcpy(p, addr, alen);
    ptrs[2] = p;
    ptrs[3] = NULL;
    p += alen;
    memcpy(p, canon, clen);
    h->h_name = p;
    p += clen;
    if (asklen > 0) {
        memcpy(p, asked, asklen);
        p[asklen] = '\0';
        ptrs[0] = p;
    } else {
        ptrs[0] = NULL;
    }
    ptrs[1] = NULL;
    h->h_aliases = ptrs[0] != NULL ? &ptrs[0] : &ptrs[1];
    h->h_addrtype = af;
    h->h_length = (int)alen;
    h->h_addr_list = &ptrs[2];
    return 0;
}

/* gethostbyname and gethostbyaddr return static storage; one per thread is at least as safe
   as glibc's one per process. */
struct static_hostent {
    struct hostent h;
    char buf[2 * NAMES_CANON_SIZE + 64];
};
static __thread struct static_hostent by_name, by_addr;

/*
 * The overlay answer for a forward lookup in family af. Returns 1 and fills *h when the name
 * is an overlay name with an address in af; 0 with *herr = NO_DATA when it is an overlay name
 * asked about in AF_INET6 (no AAAA), or *herr = HOST_NOT_FOUND for a name in the cluster
 * domain that no node has; -1 when the real resolver should answer; or ERANGE (> 1) when buf
 * is too small.
 */
static int overlay_forward(const char *name, int af, struct hostent *h, char *buf, size_t buflen,
                           int *herr)
{
    uint32_t vip;
    char canon[NAMES_CANON_SIZE];
    bool nxdomain = false;
    if ((af != AF_INET && af != AF_INET6) || !names_is_candidate(name))
        return -1;
    if (!names_resolve(name, &vip, canon, &nxdomain)) {
        if (!nxdomain)
            return -1;
        *herr = HOST_NOT_FOUND;
        return 0;
    }
    if (af == AF_INET6) {
        *herr = NO_DATA;
        return 0;
    }
    int rc = build_hostent(h, buf, buflen, canon, name, AF_INET, &vip);
    if (rc != 0) {
        *herr = NETDB_INTERNAL;
        return rc;
    }
    *herr = NETDB_SUCCESS;
    return 1;
}

/* The reentrant calling convention: 0 and *result on success, 0 and NULL when not found,
   ERANGE (also in errno) when the buffer is too small. */
static int reentrant_result(int rc, struct hostent *ret, struct hostent **result, int *h_errnop,
                            int herr)
{
    if (h_errnop != NULL)
        *h_errnop = herr;
    /* glibc sets the global too, and programs read it (CPython's socket module does). */
    h_errno = herr;
    if (rc == 1) {
        *result = ret;
        return 0;
    }
    *result = NULL;
    if (rc == 0)
        return 0;
    errno = rc;
    return rc;
}

SHIM_EXPORT struct hostent *gethostbyname(const char *name)
{
    shim_init();
    if (shim_real.gethostbyname == NULL) {
        h_errno = NETDB_INTERNAL;
        errno = ENOSYS;
        return NULL;
    }
    int herr;
    int rc = overlay_forward(name, AF_INET, &by_name.h, by_name.buf, sizeof by_name.buf, &herr);
    if (rc < 0)
        return shim_real.gethostbyname(name);
    h_errno = herr;
    return rc == 1 ? &by_name.h : NULL;
}

SHIM_EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
    shim_init();
    if (shim_real.gethostbyname2 == NULL) {
        h_errno = NETDB_INTERNAL;
        errno = ENOSYS;
        return NULL;
    }
    int herr;
    int rc = overlay_forward(name, af, &by_name.h, by_name.buf, sizeof by_name.buf, &herr);
    if (rc < 0)
        return shim_real.gethostbyname2(name, af);
    h_errno = herr;
    return rc == 1 ? &by_name.h : NULL;
}

SHIM_EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
                                struct hostent **result, int *h_errnop)
{
    shim_init();
    if (shim_real.gethostbyname_r == NULL)
        return ENOSYS;
    int herr = NETDB_SUCCESS;
    int rc = overlay_forward(name, AF_INET, ret, buf, buflen, &herr);
    if (rc < 0)
        return shim_real.gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
    return reentrant_result(rc, ret, result, h_errnop, herr);
}

SHIM_EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
                                 size_t buflen, struct hostent **result, int *h_errnop)
{
    shim_init();
    if (shim_real.gethostbyname2_r == NULL)
        return ENOSYS;
    int herr = NETDB_SUCCESS;
    int rc = overlay_forward(name, af, ret, buf, buflen, &herr);
    if (rc < 0)
        return shim_real.gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
    return reentrant_result(rc, ret, result, h_errnop, herr);
}

/*
 * The overlay answer for a reverse lookup: a VIP as AF_INET (4 bytes) or as ::ffff:VIP in
 * AF_INET6 (16 bytes). Same results as overlay_forward; 0 (HOST_NOT_FOUND) for a VIP no node holds.
 */
static int overlay_reverse(const void *addr, socklen_t len, int type, struct hostent *h,
                           char *buf, size_t buflen, int *herr)
{
    if (!shim_cfg.enabled || addr == NULL)
        return -1;
    uint32_t vip;
    if (type == AF_INET && len == 4) {
        memcpy(&vip, addr, 4);
    } else if (type == AF_INET6 && len == 16 &&
               IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
        memcpy(&vip, (const unsigned char *)addr + 12, 4);
    } else {
        return -1;
    }
    char canon[NAMES_CANON_SIZE];
    bool nxdomain;
    if (!names_reverse(vip, canon, &nxdomain)) {
        if (!nxdomain)
            return -1;
        *herr = HOST_NOT_FOUND;
        return 0;
    }
    int rc = build_hostent(h, buf, buflen, canon, NULL, type, addr);
    *herr = rc == 0 ? NETDB_SUCCESS : NETDB_INTERNAL;
    return rc == 0 ? 1 : rc;
}

SHIM_EXPORT struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type)
{
    shim_init();
    if (shim_real.gethostbyaddr == NULL) {
        h_errno = NETDB_INTERNAL;
        errno = ENOSYS;
        return NULL;
    }
    int herr;
    int rc = overlay_reverse(addr, len, type, &by_addr.h, by_addr.buf, sizeof by_addr.buf, &herr);
    if (rc < 0)
        return shim_real.gethostbyaddr(addr, len, type);
    h_errno = herr;
    return rc == 1 ? &by_addr.h : NULL;
}

SHIM_EXPORT int gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret,
                                char *buf, size_t buflen, struct hostent **result,
                                int *h_errnop)
{
    shim_init();
    if (shim_real.gethostbyaddr_r == NULL)
        return ENOSYS;
    int herr = NETDB_SUCCESS;
    int rc = overlay_reverse(addr, len, type, ret, buf, buflen, &herr);
    if (rc < 0)
        return shim_real.gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop);
    return reentrant_result(rc, ret, result, h_errnop, herr);
}

/* ---- getnameinfo ------------------------------------------------------------------------ */

SHIM_EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
                            socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
    shim_init();
    if (shim_real.getnameinfo == NULL)
        return EAI_SYSTEM;
    uint32_t ip;
    uint16_t port;
    char canon[NAMES_CANON_SIZE];
    bool nxdomain = false;
    if (!shim_cfg.enabled || host == NULL || hostlen == 0 || (flags & NI_NUMERICHOST) ||
        !sa_get_v4(sa, salen, &ip, &port) || !addr_is_vip(ip) ||
        !names_reverse(ip, canon, &nxdomain)) {
        if (!nxdomain)
            return shim_real.getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
        /* A VIP no node holds: no name, as from an authoritative reverse zone. */
        if (flags & NI_NAMEREQD)
            return EAI_NONAME;
        return shim_real.getnameinfo(sa, salen, host, hostlen, serv, servlen,
                                     flags | NI_NUMERICHOST);
    }

    /* NI_NOFQDN: the node part only (every overlay node is "local" to the cluster). */
    if (flags & NI_NOFQDN) {
        char *dot = strchr(canon, '.');
        if (dot != NULL)
            *dot = '\0';
    }
    size_t n = strlen(canon) + 1;
    if (n > hostlen)
        return EAI_OVERFLOW;
    /* The service part, its flags (NI_NUMERICSERV, NI_DGRAM) and its errors stay libc's. */
    if (serv != NULL && servlen > 0) {
        int rc = shim_real.getnameinfo(sa, salen, NULL, 0, serv, servlen, flags);
        if (rc != 0)
            return rc;
    }
    memcpy(host, canon, n);
    return 0;
}
