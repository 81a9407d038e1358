/*
 * Interface enumeration: a virtual interface "isthmus0" that carries this node's VIP.
 *
 * Programs that advertise their own addresses (MPI's TCP transports, Spark, Gloo, NCCL's socket
 * bootstrap) pick them from the interface list. The overlay address must be there, or they
 * advertise a real address other nodes cannot use through the overlay. So getifaddrs lists
 * isthmus0 first, SIOCGIFCONF appends it, and the per-interface ioctls, if_nametoindex,
 * if_indextoname and if_nameindex answer for it (docs/ARCHITECTURE.md, "Interfaces"):
 * IFF_UP|IFF_RUNNING|IFF_BROADCAST|IFF_MULTICAST, address = own VIP, netmask and broadcast of
 * the cluster network, MTU 65535, index 4242. Open MPI's posix_ipv4 component uses
 * SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFINDEX, SIOCGIFNETMASK and SIOCGIFADDR.
 *
 * ioctl is on many hot paths (FIONREAD, TCGETS, FIONBIO): every other request goes to the real
 * ioctl after one switch. Netlink (RTM_GETLINK/RTM_GETADDR, used by `ip` and some runtimes) is
 * not virtualised.
 *
 * Not _GNU_SOURCE, for the reason given at the top of hooks_connect.c.
 */
#undef _GNU_SOURCE
#define _DEFAULT_SOURCE 1
#include "shim.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define IFACE_NAME "isthmus0"
#define IFACE_INDEX 4242
#define IFACE_MTU 65535
#define IFACE_FLAGS (IFF_UP | IFF_RUNNING | IFF_BROADCAST | IFF_MULTICAST)

static bool is_ours(const char *name)
{
    return strncmp(name, IFACE_NAME, IFNAMSIZ) == 0;
}

static void make_sin(struct sockaddr_in *s, uint32_t ip)
{
    memset(s, 0, sizeof *s);
    s->sin_family = AF_INET;
    s->sin_addr.s_addr = ip;
}

static uint32_t broadcast(void)
{
    return shim_cfg.net | ~shim_cfg.mask;
}

/* ---- getifaddrs ------------------------------------------------------------------------- */

/*
 * Our entry, allocated with malloc in front of libc's list. Its ifa_name points into itself,
 * which is how freeifaddrs recognises it: libc's entries keep their names at another offset,
 * and the magic makes a coincidence impossible in practice.
 */
#define ENTRY_MAGIC 0x49535448u /* "ISTH" */
struct entry {
    struct ifaddrs ifa;
    char name[IFNAMSIZ];
    uint32_t magic;
    struct sockaddr_in addr, netmask, broadaddr;
};

SHIM_EXPORT int getifaddrs(struct ifaddrs **ifap)
{
    shim_init();
    if (shim_real.getifaddrs == NULL || shim_real.freeifaddrs == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!shim_cfg.enabled || ifap == NULL)
        return shim_real.getifaddrs(ifap);
    struct ifaddrs *list = NULL;
    if (shim_real.getifaddrs(&list) < 0)
        return -1;
    struct entry *e = calloc(1, sizeof *e);
    if (e == NULL) {
        shim_real.freeifaddrs(list);
        errno = ENOMEM;
        return -1;
    }
    memcpy(e->name, IFACE_NAME, sizeof IFACE_NAME);
    e->magic = ENTRY_MAGIC;
    make_sin(&e->addr, shim_cfg.own_vip);
    make_sin(&e->netmask, shim_cfg.mask);
    make_sin(&e->broadaddr, broadcast());
    e->ifa.ifa_next = list;
    e->ifa.ifa_name = e->name;
    e->ifa.ifa_flags = IFACE_FLAGS;
    e->ifa.ifa_addr = (struct sockaddr *)&e->addr;
    e->ifa.ifa_netmask = (struct sockaddr *)&e->netmask;
    e->ifa.ifa_broadaddr = (struct sockaddr *)&e->broadaddr;
    e->ifa.ifa_data = NULL;
    *ifap = &e->ifa;
    return 0;
}

SHIM_EXPORT void freeifaddrs(struct ifaddrs *ifa)
{
    shim_init();
    if (shim_real.freeifaddrs == NULL)
        return;
    struct entry *e = (struct entry *)ifa;
    if (ifa != NULL && ifa->ifa_name == e->name && e->magic == ENTRY_MAGIC) {
        struct ifaddrs *rest = ifa->ifa_next;
        e->magic = 0;
        free(e);
        if (rest != NULL)
            shim_real.freeifaddrs(rest);
        return;
    }
    shim_real.freeifaddrs(ifa);
}

/* ---- ioctl ------------------------------------------------------------------------------ */

/* SIOCGIFCONF: the kernel's list of IPv4 interfaces with isthmus0 appended, in the space the
   caller gave (or the length it needs when ifc_buf is NULL). */
static int ifconf(int fd, unsigned long request, struct ifconf *ifc)
{
    if (ifc->ifc_buf == NULL) {
        int rc = shim_real.ioctl(fd, request, ifc);
        if (rc == 0)
            ifc->ifc_len += (int)sizeof(struct ifreq);
        return rc;
    }
    int cap = ifc->ifc_len;
    if (cap < (int)sizeof(struct ifreq))
        return shim_real.ioctl(fd, request, ifc); /* no room for any entry */
    /* The kernel fills what fits in one entry less; a caller that finds the buffer full
       grows it and asks again, as it would natively. */
    ifc->ifc_len = cap - (int)sizeof(struct ifreq);
    int rc = shim_real.ioctl(fd, request, ifc);
    if (rc < 0) {
        ifc->ifc_len = cap;
        return rc;
    }
    struct ifreq r;
    memset(&r, 0, sizeof r);
    memcpy(r.ifr_name, IFACE_NAME, sizeof IFACE_NAME);
    make_sin((struct sockaddr_in *)&r.ifr_addr, shim_cfg.own_vip);
    memcpy(ifc->ifc_buf + ifc->ifc_len, &r, sizeof r);
    ifc->ifc_len += (int)sizeof r;
    return rc;
}

/* The per-interface requests for isthmus0. Returns false if the request is not ours. */
static bool iface_request(unsigned long request, struct ifreq *r)
{
    switch (request) {
    case SIOCGIFNAME:
        if (r->ifr_ifindex != IFACE_INDEX)
            return false;
        memset(r->ifr_name, 0, sizeof r->ifr_name);
        memcpy(r->ifr_name, IFACE_NAME, sizeof IFACE_NAME);
        return true;
    case SIOCGIFADDR:
    case SIOCGIFNETMASK:
    case SIOCGIFBRDADDR:
    case SIOCGIFFLAGS:
    case SIOCGIFINDEX:
    case SIOCGIFMTU:
    case SIOCGIFHWADDR:
        break;
    default:
        return false;
    }
    if (!is_ours(r->ifr_name))
        return false;
    switch (request) {
    case SIOCGIFADDR:
        make_sin((struct sockaddr_in *)&r->ifr_addr, shim_cfg.own_vip);
        break;
    case SIOCGIFNETMASK:
        make_sin((struct sockaddr_in *)&r->ifr_netmask, shim_cfg.mask);
        break;
    case SIOCGIFBRDADDR:
        make_sin((struct sockaddr_in *)&r->ifr_broadaddr, broadcast());
        break;
    case SIOCGIFFLAGS:
        r->ifr_flags = IFACE_FLAGS;
        break;
    case SIOCGIFINDEX:
        r->ifr_ifindex = IFACE_INDEX;
        break;
    case SIOCGIFMTU:
        r->ifr_mtu = IFACE_MTU;
        break;
    case SIOCGIFHWADDR:
        memset(&r->ifr_hwaddr, 0, sizeof r->ifr_hwaddr);
        r->ifr_hwaddr.sa_family = 0xFFFE; /* ARPHRD_NONE, as a tun device */
        break;
    }
    return true;
}

SHIM_EXPORT int ioctl(int fd, unsigned long request, ...)
{
    /* Every ioctl request passes at most one argument, a pointer or an int that fits in the
       same register (the kernel's ABI, and how glibc's own ioctl reads it). */
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    shim_init();
    if (shim_real.ioctl == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!shim_cfg.enabled || arg == NULL)
        return shim_real.ioctl(fd, request, arg);
    switch (request) {
    case SIOCGIFCONF:
        return ifconf(fd, request, arg);
    case SIOCGIFNAME:
    case SIOCGIFADDR:
    case SIOCGIFNETMASK:
    case SIOCGIFBRDADDR:
    case SIOCGIFFLAGS:
    case SIOCGIFINDEX:
    case SIOCGIFMTU:
    case SIOCGIFHWADDR:
        if (iface_request(request, arg))
            return 0;
        break;
    default:
        break;
    }
    return shim_real.ioctl(fd, request, arg);
}

/* ---- if_nametoindex and friends --------------------------------------------------------- */

SHIM_EXPORT unsigned int if_nametoindex(const char *name)
{
    shim_init();
    if (shim_real.if_nametoindex == NULL) {
        errno = ENOSYS;
        return 0;
    }
    if (shim_cfg.enabled && name != NULL && is_ours(name))
        return IFACE_INDEX;
    return shim_real.if_nametoindex(name);
}

SHIM_EXPORT char *if_indextoname(unsigned int index, char name[IF_NAMESIZE])
{
    shim_init();
    if (shim_real.if_indextoname == NULL) {
        errno = ENOSYS;
        return NULL;
    }
    if (shim_cfg.enabled && index == IFACE_INDEX && name != NULL) {
        memcpy(name, IFACE_NAME, sizeof IFACE_NAME);
        return name;
    }
    return shim_real.if_indextoname(index, name);
}

/*
 * glibc's if_nameindex (Linux) mallocs the array and each name separately, and its
 * if_freenameindex frees them the same way; the array built here follows that layout, so
 * libc's if_freenameindex frees it and needs no hook.
 */
SHIM_EXPORT struct if_nameindex *if_nameindex(void)
{
    shim_init();
    if (shim_real.if_nameindex == NULL) {
        errno = ENOSYS;
        return NULL;
    }
    struct if_nameindex *real = shim_real.if_nameindex();
    if (!shim_cfg.enabled || real == NULL)
        return real;
    size_t n = 0;
    while (n < 65536 && (real[n].if_index != 0 || real[n].if_name != NULL))
        n++;
    struct if_nameindex *out = malloc((n + 2) * sizeof *out);
    char *name = strdup(IFACE_NAME);
    if (out == NULL || name == NULL) {
        free(out);
        free(name);
        return real; /* the real list is still a correct answer, just without isthmus0 */
    }
    memcpy(out, real, n * sizeof *out);
    out[n].if_index = IFACE_INDEX;
    out[n].if_name = name;
    out[n + 1].if_index = 0;
    out[n + 1].if_name = NULL;
    free(real); /* only the array: its names now belong to out */
    return out;
}
