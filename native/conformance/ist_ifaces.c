/*
 * ist_ifaces
 *
 * Lists the interfaces as the three classic APIs report them, one line each, so a test can
 * check that the overlay's isthmus0 appears consistently with this node's VIP.
 *
 * stdout  IFADDR name=NAME family=AF_INET addr=IP netmask=IP broadaddr=IP|- flags=0xHEX index=N
 *         (getifaddrs; AF_INET entries only, in list order)
 *         IFCONF name=NAME addr=IP flags=0xHEX netmask=IP broadaddr=IP|ERR index=N mtu=N
 *         (SIOCGIFCONF, then SIOCGIFFLAGS/NETMASK/BRDADDR/INDEX/MTU per entry)
 *         IFNAMEINDEX index=N name=NAME back=NAME       (if_nameindex, if_indextoname)
 *         ERROR call errno=NAME                         exit 4
 * exit    0
 */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void fail(const char *call)
{
    out("ERROR %s errno=%s", call, errno_name(errno));
    exit(EXIT_OTHER);
}

static const char *ip4(const struct sockaddr *sa, char *buf)
{
    if (sa == NULL || sa->sa_family != AF_INET)
        return "-";
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, INET_ADDRSTRLEN);
    return buf;
}

static void list_getifaddrs(void)
{
    struct ifaddrs *list;
    if (getifaddrs(&list) < 0)
        fail("getifaddrs");
    for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET)
            continue;
        char a[INET_ADDRSTRLEN], m[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
        out("IFADDR name=%s family=AF_INET addr=%s netmask=%s broadaddr=%s flags=0x%x index=%u",
            i->ifa_name, ip4(i->ifa_addr, a), ip4(i->ifa_netmask, m),
            (i->ifa_flags & IFF_BROADCAST) ? ip4(i->ifa_broadaddr, b) : "-", i->ifa_flags,
            if_nametoindex(i->ifa_name));
    }
    freeifaddrs(list);
}

static void list_ifconf(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail("socket");
    struct ifconf ifc = {.ifc_len = 0, .ifc_buf = NULL};
    if (ioctl(fd, SIOCGIFCONF, &ifc) < 0)
        fail("SIOCGIFCONF(NULL)");
    int want = ifc.ifc_len;
    char *buf = calloc(1, (size_t)want + sizeof(struct ifreq));
    if (buf == NULL)
        fail("calloc");
    ifc.ifc_len = want;
    ifc.ifc_buf = buf;
    if (ioctl(fd, SIOCGIFCONF, &ifc) < 0)
        fail("SIOCGIFCONF");
    if (ifc.ifc_len != want)
        note("SIOCGIFCONF: length %d, the NULL call said %d", ifc.ifc_len, want);
    for (int off = 0; off + (int)sizeof(struct ifreq) <= ifc.ifc_len; off += sizeof(struct ifreq)) {
        struct ifreq *r = (struct ifreq *)(buf + off);
        char a[INET_ADDRSTRLEN], m[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
        char name[IFNAMSIZ + 1];
        memcpy(name, r->ifr_name, IFNAMSIZ);
        name[IFNAMSIZ] = '\0';
        ip4(&r->ifr_addr, a);
        struct ifreq q;
        memset(&q, 0, sizeof q);
        memcpy(q.ifr_name, r->ifr_name, IFNAMSIZ);
        if (ioctl(fd, SIOCGIFFLAGS, &q) < 0)
            fail("SIOCGIFFLAGS");
        int flags = q.ifr_flags & 0xffff;
        if (ioctl(fd, SIOCGIFNETMASK, &q) < 0)
            fail("SIOCGIFNETMASK");
        ip4(&q.ifr_netmask, m);
        const char *bc = ioctl(fd, SIOCGIFBRDADDR, &q) < 0 ? "ERR" : ip4(&q.ifr_broadaddr, b);
        if (ioctl(fd, SIOCGIFINDEX, &q) < 0)
            fail("SIOCGIFINDEX");
        int index = q.ifr_ifindex;
        if (ioctl(fd, SIOCGIFMTU, &q) < 0)
            fail("SIOCGIFMTU");
        out("IFCONF name=%s addr=%s flags=0x%x netmask=%s broadaddr=%s index=%d mtu=%d", name, a,
            flags, m, bc, index, q.ifr_mtu);
    }
    free(buf);
    close(fd);
}

static void list_nameindex(void)
{
    struct if_nameindex *ni = if_nameindex();
    if (ni == NULL)
        fail("if_nameindex");
    for (struct if_nameindex *p = ni; p->if_index != 0 || p->if_name != NULL; p++) {
        char back[IF_NAMESIZE];
        const char *b = if_indextoname(p->if_index, back);
        out("IFNAMEINDEX index=%u name=%s back=%s", p->if_index, p->if_name, b ? b : "ERR");
    }
    if_freenameindex(ni);
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        note("usage: ist_ifaces");
        return EXIT_OTHER;
    }
    list_getifaddrs();
    list_ifconf();
    list_nameindex();
    return EXIT_OK;
}
