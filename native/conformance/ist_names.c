/*
 * ist_names lookup NAME VIP
 * ist_names hostname
 *
 * Prints what the resolver functions answer, one line per call, so a test can compare them
 * with what the overlay should give. NAME is looked up forwards, VIP (dotted) backwards.
 *
 * lookup stdout (LABEL names the call and its arguments; errors print as their symbolic names)
 *   GAI LABEL rc=0 canon=NAME|- addrs=FAMILY/SOCKTYPE/PROTO/IP:PORT,...   getaddrinfo, service "80"
 *   GAI LABEL rc=EAI_NAME
 *   HOSTENT LABEL name=NAME aliases=A,B|- type=AF_INET|AF_INET6 addrs=IP,...
 *   HOSTENT LABEL herr=HOST_NOT_FOUND|NO_DATA|... [rc=ERRNO_NAME]       gethostby*
 *   GNI LABEL rc=0 host=NAME serv=SERV | GNI LABEL rc=EAI_NAME          getnameinfo
 * hostname stdout
 *   GETHOSTNAME name=NAME | GETHOSTNAME errno=NAME
 *   GETHOSTNAME_SHORT len=N errno=NAME|ok                  buffer one byte too small
 *   UNAME nodename=NAME
 * exit  0 (the lines are the result), 4 on bad arguments
 */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#define E(name) {name, #name}
static const struct {
    int value;
    const char *name;
} eai_table[] = {
    E(EAI_BADFLAGS), E(EAI_NONAME), E(EAI_AGAIN),    E(EAI_FAIL),
    E(EAI_FAMILY),   E(EAI_SOCKTYPE), E(EAI_SERVICE), E(EAI_MEMORY),
    E(EAI_SYSTEM),   E(EAI_OVERFLOW), E(EAI_NODATA), E(EAI_ADDRFAMILY),
}, herr_table[] = {
    E(HOST_NOT_FOUND), E(TRY_AGAIN), E(NO_RECOVERY), E(NO_DATA), E(NETDB_INTERNAL),
    E(NETDB_SUCCESS),
};
#undef E

static const char *eai_name(int rc)
{
    for (size_t i = 0; i < sizeof eai_table / sizeof eai_table[0]; i++)
        if (eai_table[i].value == rc)
            return eai_table[i].name;
    static char buf[24];
    snprintf(buf, sizeof buf, "EAI%d", rc);
    return buf;
}

static const char *herr_name(int h)
{
    for (size_t i = 0; i < sizeof herr_table / sizeof herr_table[0]; i++)
        if (herr_table[i].value == h)
            return herr_table[i].name;
    static char buf[24];
    snprintf(buf, sizeof buf, "H%d", h);
    return buf;
}

static const char *family_name(int f)
{
    return f == AF_INET ? "AF_INET" : f == AF_INET6 ? "AF_INET6" : f == AF_UNSPEC ? "AF_UNSPEC" : "AF?";
}

static const char *socktype_name(int t)
{
    return t == SOCK_STREAM ? "STREAM" : t == SOCK_DGRAM ? "DGRAM" : t == SOCK_RAW ? "RAW" : "T?";
}

static void gai(const char *label, const char *node, int family, int socktype, int flags,
                bool null_hints)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = socktype;
    hints.ai_flags = flags;
    int rc = getaddrinfo(node, "80", null_hints ? NULL : &hints, &res);
    if (rc != 0) {
        out("GAI %s rc=%s", label, eai_name(rc));
        return;
    }
    char line[4096];
    size_t n = 0;
    for (struct addrinfo *ai = res; ai != NULL && n < sizeof line - 200; ai = ai->ai_next) {
        char a[ADDR_BUF];
        n += (size_t)snprintf(line + n, sizeof line - n, "%s%s/%s/%d/%s", n ? "," : "",
                              family_name(ai->ai_family), socktype_name(ai->ai_socktype),
                              ai->ai_protocol, fmt_addr(ai->ai_addr, ai->ai_addrlen, a));
    }
    out("GAI %s rc=0 canon=%s addrs=%s", label, res->ai_canonname ? res->ai_canonname : "-",
        line);
    freeaddrinfo(res);
}

static void print_hostent(const char *label, const struct hostent *h, int herr, int rc)
{
    if (h == NULL) {
        if (rc != 0)
            out("HOSTENT %s herr=%s rc=%s", label, herr_name(herr), errno_name(rc));
        else
            out("HOSTENT %s herr=%s", label, herr_name(herr));
        return;
    }
    char aliases[1024] = "-", addrs[1024] = "";
    size_t n = 0;
    for (char **a = h->h_aliases; a && *a && n < sizeof aliases - 300; a++)
        n += (size_t)snprintf(aliases + n, sizeof aliases - n, "%s%s", n ? "," : "", *a);
    n = 0;
    for (char **a = h->h_addr_list; a && *a && n < sizeof addrs - 100; a++) {
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(h->h_addrtype, *a, ip, sizeof ip);
        n += (size_t)snprintf(addrs + n, sizeof addrs - n, "%s%s", n ? "," : "", ip);
    }
    out("HOSTENT %s name=%s aliases=%s type=%s len=%d addrs=%s", label, h->h_name, aliases,
        family_name(h->h_addrtype), h->h_length, addrs);
}

static void gni(const char *label, const char *vip, int flags, socklen_t hostlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    make_addr(vip, 80, &ss, &len);
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    int rc = getnameinfo((struct sockaddr *)&ss, len, host, hostlen, serv, sizeof serv, flags);
    if (rc != 0)
        out("GNI %s rc=%s", label, eai_name(rc));
    else
        out("GNI %s rc=0 host=%s serv=%s", label, host, serv);
}

static int lookup(const char *name, const char *vip)
{
    gai("null-hints", name, 0, 0, 0, true);
    gai("unspec", name, AF_UNSPEC, 0, 0, false);
    gai("inet", name, AF_INET, 0, 0, false);
    gai("inet6", name, AF_INET6, 0, 0, false);
    gai("inet6-v4mapped", name, AF_INET6, 0, AI_V4MAPPED, false);
    gai("inet6-v4mapped-all", name, AF_INET6, 0, AI_V4MAPPED | AI_ALL, false);
    gai("stream", name, AF_UNSPEC, SOCK_STREAM, 0, false);
    gai("dgram", name, AF_INET, SOCK_DGRAM, 0, false);
    gai("canonname", name, AF_UNSPEC, SOCK_STREAM, AI_CANONNAME, false);
    gai("addrconfig", name, AF_UNSPEC, SOCK_STREAM, AI_ADDRCONFIG, false);
    gai("numerichost-name", name, AF_UNSPEC, 0, AI_NUMERICHOST, false);
    gai("numerichost-vip", vip, AF_INET, SOCK_STREAM, AI_NUMERICHOST, false);
    gai("passive-null-node", NULL, AF_INET, SOCK_STREAM, AI_PASSIVE, false);
    gai("vip-canonname", vip, AF_INET, SOCK_STREAM, AI_CANONNAME, false);

    /* h_errno is read after each call returns (argument order is unspecified). */
    struct hostent *h;
    h_errno = 0;
    h = gethostbyname(name);
    print_hostent("gethostbyname", h, h_errno, 0);
    h_errno = 0;
    h = gethostbyname2(name, AF_INET);
    print_hostent("gethostbyname2-inet", h, h_errno, 0);
    h_errno = 0;
    h = gethostbyname2(name, AF_INET6);
    print_hostent("gethostbyname2-inet6", h, h_errno, 0);

    struct hostent he, *res;
    char buf[1024];
    int herr = 0;
    int rc = gethostbyname_r(name, &he, buf, sizeof buf, &res, &herr);
    print_hostent("gethostbyname_r", res, herr, rc);
    rc = gethostbyname_r(name, &he, buf, 8, &res, &herr);
    print_hostent("gethostbyname_r-small", res, herr, rc);
    rc = gethostbyname2_r(name, AF_INET6, &he, buf, sizeof buf, &res, &herr);
    print_hostent("gethostbyname2_r-inet6", res, herr, rc);

    struct in_addr a;
    if (inet_pton(AF_INET, vip, &a) != 1) {
        note("VIP must be dotted IPv4: %s", vip);
        return EXIT_OTHER;
    }
    h_errno = 0;
    h = gethostbyaddr(&a, sizeof a, AF_INET);
    print_hostent("gethostbyaddr", h, h_errno, 0);
    rc = gethostbyaddr_r(&a, sizeof a, AF_INET, &he, buf, sizeof buf, &res, &herr);
    print_hostent("gethostbyaddr_r", res, herr, rc);

    gni("default", vip, 0, NI_MAXHOST);
    gni("namereqd", vip, NI_NAMEREQD, NI_MAXHOST);
    gni("numerichost", vip, NI_NUMERICHOST | NI_NUMERICSERV, NI_MAXHOST);
    gni("nofqdn", vip, NI_NOFQDN, NI_MAXHOST);
    gni("short-buffer", vip, NI_NAMEREQD, 4);
    return EXIT_OK;
}

static int hostname(void)
{
    char name[256];
    if (gethostname(name, sizeof name) < 0) {
        out("GETHOSTNAME errno=%s", errno_name(errno));
    } else {
        out("GETHOSTNAME name=%s", name);
        size_t len = strlen(name); /* room for the name but not its NUL */
        errno = 0;
        int rc = gethostname(name, len);
        out("GETHOSTNAME_SHORT len=%zu %s", len, rc < 0 ? errno_name(errno) : "ok");
    }
    struct utsname u;
    if (uname(&u) < 0)
        out("UNAME errno=%s", errno_name(errno));
    else
        out("UNAME nodename=%s", u.nodename);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "lookup") == 0)
        return lookup(argv[2], argv[3]);
    if (argc == 2 && strcmp(argv[1], "hostname") == 0)
        return hostname();
    note("usage: %s lookup NAME VIP | %s hostname", argv[0], argv[0]);
    return EXIT_OTHER;
}
