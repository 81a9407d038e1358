/*
 * The loopback image (docs/ARCHITECTURE.md, "Addresses"): image = image_base | (vip & ~mask).
 * All of 127/8 is local on Linux, so a VIP's image needs no configuration, and because the
 * mapping is a pure function it survives fork and exec with no table.
 *
 * Values are network-order uint32 as stored in sin_addr; the bit operations work the same in
 * either byte order because mask, net and image_base are all kept in network order.
 */
#include "shim.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>

bool addr_is_vip(uint32_t a)
{
    return (a & shim_cfg.mask) == shim_cfg.net;
}

uint32_t addr_to_image(uint32_t vip)
{
    return shim_cfg.image_base | (vip & ~shim_cfg.mask);
}

bool addr_is_image(uint32_t a)
{
    return (a & shim_cfg.mask) == shim_cfg.image_base;
}

uint32_t addr_from_image(uint32_t image)
{
    return shim_cfg.net | (image & ~shim_cfg.mask);
}

const char *addr_str(uint32_t a, char *buf)
{
    struct in_addr in = {.s_addr = a};
    if (inet_ntop(AF_INET, &in, buf, 16) == NULL)
        buf[0] = '\0';
    return buf;
}

/* The kernel accepts an AF_INET6 address as short as the RFC 2133 layout (no scope id). */
#define SIN6_MIN_LEN ((socklen_t)offsetof(struct sockaddr_in6, sin6_scope_id))

/*
 * Reads the IPv4 address and port of an AF_INET sockaddr or a v4-mapped (::ffff:a.b.c.d)
 * AF_INET6 one. Returns false for anything else, including lengths the kernel would refuse.
 */
bool sa_get_v4(const struct sockaddr *sa, socklen_t len, uint32_t *ip, uint16_t *port)
{
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return false;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        *ip = s4->sin_addr.s_addr;
        *port = s4->sin_port;
        return true;
    }
    if (sa->sa_family == AF_INET6 && len >= SIN6_MIN_LEN) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            return false;
        memcpy(ip, &s6->sin6_addr.s6_addr[12], sizeof *ip);
        *port = s6->sin6_port;
        return true;
    }
    return false;
}

/* Builds ip:port as an AF_INET sockaddr, or as ::ffff:ip for an AF_INET6 socket. */
socklen_t sa_make_v4(struct sockaddr_storage *out, int family, uint32_t ip, uint16_t port)
{
    memset(out, 0, sizeof *out);
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = port;
        s6->sin6_addr.s6_addr[10] = 0xff;
        s6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&s6->sin6_addr.s6_addr[12], &ip, sizeof ip);
        return sizeof *s6;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)out;
    s4->sin_family = AF_INET;
    s4->sin_port = port;
    s4->sin_addr.s_addr = ip;
    return sizeof *s4;
}

/*
 * True if sa is the wildcard address (0.0.0.0 or ::, also ::ffff:0.0.0.0); *port_zero tells
 * whether the port is 0 as well, i.e. the socket is not bound at all.
 */
bool sa_is_unspecified(const struct sockaddr *sa, socklen_t len, bool *port_zero)
{
    uint32_t ip;
    uint16_t port;
    if (sa_get_v4(sa, len, &ip, &port)) {
        *port_zero = port == 0;
        return ip == INADDR_ANY;
    }
    if (sa != NULL && sa->sa_family == AF_INET6 && len >= SIN6_MIN_LEN) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        *port_zero = s6->sin6_port == 0;
        return IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
    }
    return false;
}

/* Rewrites an image address (AF_INET or v4-mapped) to its VIP in place; others are left. */
void sa_image_to_vip(struct sockaddr_storage *ss, socklen_t len)
{
    uint32_t ip;
    uint16_t port;
    if (!sa_get_v4((const struct sockaddr *)ss, len, &ip, &port) || !addr_is_image(ip))
        return;
    uint32_t vip = addr_from_image(ip);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_addr.s_addr = vip;
    else
        memcpy(&((struct sockaddr_in6 *)ss)->sin6_addr.s6_addr[12], &vip, sizeof vip);
}

/*
 * Hands an address to the caller the way the kernel does: copy at most *dst_len bytes, then
 * report the full length so a short buffer can be detected.
 */
void sa_copy_out(struct sockaddr *dst, socklen_t *dst_len, const struct sockaddr_storage *src,
                 socklen_t src_len)
{
    socklen_t n = *dst_len < src_len ? *dst_len : src_len;
    if (n > 0)
        memcpy(dst, src, n);
    *dst_len = src_len;
}

void sa_image_to_vip_out(struct sockaddr *out, socklen_t copied, socklen_t full)
{
    if (out == NULL || (int)copied < (int)sizeof(sa_family_t) ||
        full > sizeof(struct sockaddr_storage))
        return;
    /* Cheap exit first: this runs after every recvfrom/recvmsg that asks for an address. */
    sa_family_t family;
    memcpy(&family, out, sizeof family);
    if (family != AF_INET && family != AF_INET6)
        return;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, out, copied);
    /* A truncated copy still holds the whole IP if the buffer reached past it; the missing
       tail (padding, or the IPv6 flow/scope fields) is left as the kernel left it. */
    socklen_t ip_end = ss.ss_family == AF_INET    ? offsetof(struct sockaddr_in, sin_zero)
                       : ss.ss_family == AF_INET6 ? offsetof(struct sockaddr_in6, sin6_scope_id)
                                                  : 0;
    if (ip_end == 0 || copied < ip_end)
        return;
    uint32_t ip;
    uint16_t port;
    if (!sa_get_v4((const struct sockaddr *)&ss, full, &ip, &port) || !addr_is_image(ip))
        return;
    sa_image_to_vip(&ss, full);
    memcpy(out, &ss, copied);
}
