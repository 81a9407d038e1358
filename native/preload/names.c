/*
 * Which host names the node agent is asked about, and asking it (RESOLVE_NAME,
 * RESOLVE_ADDR). Used by the lookup hooks in hooks_lookup.c.
 *
 * Overlay names are NODE.SITE.CLUSTER and the short NODE (docs/ARCHITECTURE.md, "Names"). Only
 * names of those shapes go to the agent: a single DNS label other than "localhost", or a name
 * ending in ".CLUSTER" (a trailing dot allowed, case-insensitive). Everything else, numeric
 * strings, and every name the agent does not know or cannot answer goes to the real resolver,
 * so ordinary lookups cost nothing but a string scan, and a missing agent changes nothing. The
 * exception: a name in the cluster's domain that the agent says does not exist is "not found"
 * (EAI_NONAME, HOST_NOT_FOUND) at once, as from an authoritative server.
 */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

static bool in_cluster_domain(const char *name);

/* Bytes a name may have in the request (the agent takes 1..253). */
#define NAME_MAX_LEN 253

bool names_is_candidate(const char *name)
{
    if (!shim_cfg.enabled || name == NULL)
        return false;
    size_t len = strnlen(name, NAME_MAX_LEN + 1);
    if (len == 0 || len > NAME_MAX_LEN)
        return false;
    size_t n = name[len - 1] == '.' ? len - 1 : len; /* without the trailing dot */
    if (n == 0)
        return false;
    bool dotted = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch == '.') {
            if (i == 0 || name[i - 1] == '.')
                return false; /* empty label: not a name any resolver would find */
            dotted = true;
        } else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_')) {
            return false;
        }
    }
    if (n == 9 && strncasecmp(name, "localhost", 9) == 0)
        return false;
    /* inet_aton takes every numeric form getaddrinfo does ("10", "10.1", "0x0a.1"). */
    struct in_addr ignored;
    if (inet_aton(name, &ignored) != 0)
        return false;
    if (!dotted)
        return true;
    return in_cluster_domain(name);
}

/* Whether name (a candidate) ends in ".CLUSTER": the cluster's own domain, where the agent's
   "unknown" is the final answer, as an authoritative DNS server's NXDOMAIN is. */
static bool in_cluster_domain(const char *name)
{
    size_t len = strlen(name);
    size_t n = len > 0 && name[len - 1] == '.' ? len - 1 : len;
    size_t clen = strlen(shim_cfg.cluster);
    return clen > 0 && n > clen + 1 && name[n - clen - 1] == '.' &&
           strncasecmp(name + n - clen, shim_cfg.cluster, clen) == 0;
}

bool names_resolve(const char *name, uint32_t *vip, char canon[NAMES_CANON_SIZE], bool *nxdomain)
{
    int saved = errno;
    struct agent_reply reply;
    bool answered = agent_rpc_payload(AGENT_OP_RESOLVE_NAME, 0, 0, 0, 0, 0, name, strlen(name),
                                      &reply) == 0;
    bool ok = answered && reply.error == 0 && reply.payload_len > 0;
    /* Only a definite "no such node" from a reachable agent is final; single-label names may
       still be hosts the real resolver knows (/etc/hosts, search domains). */
    *nxdomain = answered && reply.error == ENOENT && in_cluster_domain(name);
    shim_log("resolve name %s -> %s", name,
             ok ? reply.payload : reply.error != 0 ? "unknown" : "no answer");
    if (ok) {
        *vip = reply.ip;
        memcpy(canon, reply.payload, reply.payload_len + 1);
    }
    errno = saved;
    return ok;
}

bool names_reverse(uint32_t vip, char canon[NAMES_CANON_SIZE], bool *nxdomain)
{
    *nxdomain = false;
    if (!shim_cfg.enabled || !addr_is_vip(vip))
        return false;
    int saved = errno;
    struct agent_reply reply;
    bool answered = agent_rpc(AGENT_OP_RESOLVE_ADDR, 0, vip, 0, 0, 0, &reply) == 0;
    bool ok = answered && reply.error == 0 && reply.payload_len > 0;
    /* The cluster network's reverse zone is the agent's: no node there means no name. */
    *nxdomain = answered && reply.error == ENOENT;
    char a[16];
    shim_log("resolve addr %s -> %s", addr_str(vip, a), ok ? reply.payload : "unknown");
    if (ok)
        memcpy(canon, reply.payload, reply.payload_len + 1);
    errno = saved;
    return ok;
}
