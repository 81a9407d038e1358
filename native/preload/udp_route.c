/*
 * Which remote VIP:port destinations the node agent has a UDP proxy for (op UDP_ROUTE).
 *
 * A datagram to a remote VIP goes to image(VIP):port on loopback, where the agent's proxy
 * socket for that endpoint must exist (docs/ARCHITECTURE.md, "UDP"). The shim asks once per
 * destination and then again whenever its answer is 30 s old, so the agent can keep proxies
 * alive while they are used and drop the rest. Asking per datagram would cost a control
 * connection each time; this table makes the common case a few loads.
 *
 * A fixed table in static memory, no allocation. Each slot is a seqlock whose writer claims it
 * with a compare-and-swap and never waits, as in peer_cache.c (read that file's header for why
 * no mutex: fork and signal handlers). Losing a race only costs another request. Failures are
 * not cached: a destination that is unreachable is asked about again on the next send, so it
 * works as soon as the agent can route it.
 */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <time.h>

#define SLOTS 256u /* power of two */
#define PROBES 4u
#define TTL_SECONDS 30

struct slot {
    uint32_t seq;  /* even: stable; odd: a writer owns the slot */
    uint64_t key;  /* vip | port << 32; 0: empty (a VIP is never 0.0.0.0) */
    uint64_t when; /* coarse monotonic seconds + 1 when the agent confirmed the route */
};

static struct slot table[SLOTS];

static uint64_t now_seconds(void)
{
    struct timespec ts;
    /* The coarse clock is a vDSO read with no system call; a second's precision is plenty
       for a 30 s lifetime. */
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) < 0)
        return 1;
    return (uint64_t)ts.tv_sec + 1;
}

static unsigned home(uint64_t key)
{
    return (unsigned)((key * 0x9E3779B97F4A7C15ull) >> 56) & (SLOTS - 1);
}

static bool read_slot(struct slot *s, uint64_t *key, uint64_t *when)
{
    for (int i = 0; i < 4; i++) {
        uint32_t s1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1)
            return false;
        *key = __atomic_load_n(&s->key, __ATOMIC_RELAXED);
        *when = __atomic_load_n(&s->when, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == s1)
            return true;
    }
    return false;
}

static bool fresh(uint64_t key, uint64_t now)
{
    unsigned h = home(key);
    for (unsigned i = 0; i < PROBES; i++) {
        uint64_t k, w;
        if (read_slot(&table[(h + i) & (SLOTS - 1)], &k, &w) && k == key)
            return now - w < TTL_SECONDS;
    }
    return false;
}

/* Stores key in its own slot if present, else an empty one, else the oldest. */
static void remember(uint64_t key, uint64_t now)
{
    unsigned h = home(key);
    struct slot *best = NULL;
    uint64_t best_when = UINT64_MAX;
    for (unsigned i = 0; i < PROBES; i++) {
        struct slot *s = &table[(h + i) & (SLOTS - 1)];
        uint64_t k, w;
        if (!read_slot(s, &k, &w))
            continue;
        if (k == key || k == 0) {
            best = s;
            break;
        }
        if (w < best_when) {
            best = s;
            best_when = w;
        }
    }
    if (best == NULL)
        return;
    uint32_t seq = __atomic_load_n(&best->seq, __ATOMIC_RELAXED);
    if ((seq & 1) || !__atomic_compare_exchange_n(&best->seq, &seq, seq + 1, false,
                                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return; /* another writer has it: we will simply ask again next time */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&best->key, key, __ATOMIC_RELAXED);
    __atomic_store_n(&best->when, now, __ATOMIC_RELAXED);
    __atomic_store_n(&best->seq, seq + 2, __ATOMIC_RELEASE);
}

int udp_route_ensure(uint32_t vip, uint16_t port)
{
    uint64_t key = (uint64_t)vip | (uint64_t)port << 32;
    uint64_t now = now_seconds();
    if (fresh(key, now))
        return 0;

    int saved = errno;
    struct agent_reply reply;
    int err;
    if (agent_rpc(AGENT_OP_UDP_ROUTE, 0, vip, port, 0, 0, &reply) < 0)
        err = errno; /* ENETUNREACH (no agent), EINTR, ETIMEDOUT, resource errors */
    else
        err = reply.error;
    char d[16];
    shim_log("udp route %s:%u -> %d", addr_str(vip, d), ntohs(port), err);
    if (err == 0)
        remember(key, now);
    errno = saved;
    return err;
}
