/*
 * The overlay destination of each socket the shim connected through the agent, for
 * getpeername().
 *
 * Such a socket's kernel peer is the agent's loopback data endpoint. Asking the agent (PEER)
 * costs a round trip and has no answer once the agent has dropped the registration, e.g. after
 * the relay ended while the program still holds the socket in CLOSE_WAIT; the program would
 * then see 127.0.0.1:PORT, which must never happen. So connect() records the destination here
 * and getpeername() answers from it, falling back to PEER only on a miss.
 *
 * Keyed by SO_COOKIE, which the kernel assigns once per socket and never reuses while it runs:
 * an fd number reused by a new socket has a new cookie, so entries are never invalidated, and a
 * stale entry can only waste a slot. Entries live in static memory (nothing is allocated). A
 * forked child inherits the table, which is right since it inherits the sockets too; exec
 * loses it, and the PEER fallback covers that.
 *
 * Concurrency: each slot is a seqlock whose writer claims it with a compare-and-swap and never
 * waits. A reader that finds a slot being written treats it as a miss, and a writer that finds
 * a slot claimed tries another or gives up. Nothing ever blocks, so a fork that copies a
 * half-written slot (odd sequence forever in the child) or a signal handler that interrupts a
 * writer cannot deadlock anything; the worst case is an RPC. A mutex could be left locked in a
 * child forked while another thread held it.
 */
#include "shim.h"

#include <errno.h>

#define SLOTS 4096u /* power of two */
#define PROBES 8u   /* slots examined per key (linear probing, wrapping) */
#define READ_TRIES 4

struct slot {
    uint32_t seq;    /* even: stable; odd: a writer owns the slot */
    uint64_t cookie; /* 0: empty (the kernel never hands out cookie 0) */
    uint64_t stamp;  /* insertion order, for choosing which entry to replace */
    uint64_t value;  /* ip | port << 32 | family << 48, as the fields of struct peer_entry */
};

/* Every field is accessed with __atomic builtins, so racing readers are well defined. */
static struct slot table[SLOTS];
static uint64_t clock_; /* insertion counter; stamps start at 1 */

static uint64_t pack(uint32_t ip, uint16_t port, uint16_t family)
{
    return (uint64_t)ip | (uint64_t)port << 32 | (uint64_t)family << 48;
}

/* Cookies come from a counter, so spread them with a multiplicative (Fibonacci) hash. */
static unsigned home(uint64_t cookie)
{
    return (unsigned)((cookie * 0x9E3779B97F4A7C15ull) >> 52) & (SLOTS - 1);
}

/* The socket's cookie, or 0 if the kernel (before 4.12) or the fd cannot give one. */
static uint64_t cookie_of(int fd)
{
    int saved = errno;
    uint64_t c = 0;
    socklen_t len = sizeof c;
    if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) < 0 || len != sizeof c)
        c = 0;
    errno = saved;
    return c;
}

/* Seqlock read (the fence pattern from Boehm, "Can seqlocks get along with programming
   language memory models?"). False if the slot is being written or changed under us. */
static bool read_slot(struct slot *s, uint64_t *cookie, uint64_t *stamp, uint64_t *value)
{
    for (int i = 0; i < READ_TRIES; i++) {
        uint32_t s1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1)
            return false;
        *cookie = __atomic_load_n(&s->cookie, __ATOMIC_RELAXED);
        *stamp = __atomic_load_n(&s->stamp, __ATOMIC_RELAXED);
        *value = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == s1)
            return true;
    }
    return false;
}

/* Claims a slot for writing without waiting. Returns the even sequence it held, or 1 (odd,
   never a valid result) if another writer owns it. */
static uint32_t claim(struct slot *s)
{
    uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
    if ((seq & 1) || !__atomic_compare_exchange_n(&s->seq, &seq, seq + 1, false,
                                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return 1;
    /* Orders the odd sequence before the field stores, as readers expect. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return seq;
}

static void publish(struct slot *s, uint32_t seq, uint64_t cookie, uint64_t stamp,
                    uint64_t value)
{
    __atomic_store_n(&s->cookie, cookie, __ATOMIC_RELAXED);
    __atomic_store_n(&s->stamp, stamp, __ATOMIC_RELAXED);
    __atomic_store_n(&s->value, value, __ATOMIC_RELAXED);
    __atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

/*
 * Slot preference for a new entry: the key's own entry (a socket connected again after a
 * failure), then an empty slot, then the oldest entry. A slot being written is skipped.
 */
static unsigned rank(uint64_t key, struct slot *s, uint64_t *stamp_out)
{
    uint64_t c, st, v;
    if (!read_slot(s, &c, &st, &v))
        return 0;
    *stamp_out = st;
    if (c == key)
        return 3;
    return c == 0 ? 2 : 1;
}

static void put_key(uint64_t key, uint32_t ip, uint16_t port, int family)
{
    if (key == 0)
        return;
    uint64_t value = pack(ip, port, (uint16_t)family);
    uint64_t stamp = __atomic_add_fetch(&clock_, 1, __ATOMIC_RELAXED);
    unsigned h = home(key);

    /* Racing writers may both pick a slot; the loser of claim() rescans, a bounded number of
       times. Giving up only costs a PEER request later. */
    for (int attempt = 0; attempt < 3; attempt++) {
        struct slot *best = NULL;
        unsigned best_rank = 0;
        uint64_t best_stamp = 0;
        for (unsigned i = 0; i < PROBES && best_rank < 3; i++) {
            struct slot *s = &table[(h + i) & (SLOTS - 1)];
            uint64_t st = 0;
            unsigned r = rank(key, s, &st);
            if (r > best_rank || (r == 1 && best_rank == 1 && st < best_stamp)) {
                best = s;
                best_rank = r;
                best_stamp = st;
            }
        }
        if (best == NULL)
            return; /* every candidate is being written right now */
        uint32_t seq = claim(best);
        if (seq & 1)
            continue;
        publish(best, seq, key, stamp, value);
        return;
    }
}

void peer_cache_forget(int fd)
{
    uint64_t key = cookie_of(fd);
    if (key == 0)
        return;
    unsigned h = home(key);
    for (unsigned i = 0; i < PROBES; i++) {
        struct slot *s = &table[(h + i) & (SLOTS - 1)];
        uint64_t c, st, v;
        if (!read_slot(s, &c, &st, &v) || c != key)
            continue;
        uint32_t seq = claim(s);
        if (seq & 1)
            continue;
        /* Recheck under the claim: the slot may have been reused since it was read. */
        if (__atomic_load_n(&s->cookie, __ATOMIC_RELAXED) == key)
            publish(s, seq, 0, 0, 0);
        else
            __atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
    }
}

static bool get_key(uint64_t key, uint32_t *ip, uint16_t *port, int *family)
{
    if (key == 0)
        return false;
    unsigned h = home(key);
    /* Should racing connects on one socket ever leave two entries, the newest one wins. */
    bool found = false;
    uint64_t newest = 0, value = 0;
    for (unsigned i = 0; i < PROBES; i++) {
        uint64_t c, st, v;
        if (read_slot(&table[(h + i) & (SLOTS - 1)], &c, &st, &v) && c == key &&
            (!found || st > newest)) {
            found = true;
            newest = st;
            value = v;
        }
    }
    if (!found)
        return false;
    *ip = (uint32_t)value;
    *port = (uint16_t)(value >> 32);
    *family = (int)(uint16_t)(value >> 48);
    return true;
}

void peer_cache_put(int fd, uint32_t ip, uint16_t port, int family)
{
    put_key(cookie_of(fd), ip, port, family);
}

bool peer_cache_get(int fd, uint32_t *ip, uint16_t *port, int *family)
{
    return get_key(cookie_of(fd), ip, port, family);
}

/* Local-port entries live beside the peer entries under the cookie with its top bit set (cookies
   count up from 1 and never get there). */
#define LOCAL_KEY(c) ((c) == 0 ? 0 : ((c) | (1ull << 63)))

void peer_cache_put_local(int fd, uint16_t port)
{
    put_key(LOCAL_KEY(cookie_of(fd)), 0, port, 0);
}

bool peer_cache_get_local(int fd, uint16_t *port)
{
    uint32_t ip;
    int family;
    return get_key(LOCAL_KEY(cookie_of(fd)), &ip, port, &family);
}
