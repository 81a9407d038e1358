/*
 * Isthmus preload shim: shared declarations.
 *
 * The shim is pure address translation plus one stateless request to the node agent per
 * overlay connect (docs/ARCHITECTURE.md, "Shim <-> agent control socket"). It keeps no fds, and
 * its only per-socket state is a cache for getpeername (peer_cache.c) that is keyed by the
 * kernel's socket cookie and needs no cleanup, so fork, exec, dup, close and close_range need
 * no hooks.
 *
 * This header must be the first include of every hook file, and those files must not define
 * _GNU_SOURCE (see the note in hooks_connect.c): it declares nothing that needs GNU extensions.
 */
#ifndef ISTHMUS_SHIM_H
#define ISTHMUS_SHIM_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Everything is hidden (-fvisibility=hidden) except the hooked libc symbols. */
#define SHIM_EXPORT __attribute__((visibility("default")))

/* Addresses and ports below are kept in network byte order, exactly as in a sockaddr. */
struct shim_config {
    bool enabled;          /* false: every hook is a pure pass-through */
    bool debug;            /* ISTHMUS_DEBUG=1: log decisions to stderr */
    uint32_t own_vip;      /* ISTHMUS_VIP */
    uint32_t net;          /* ISTHMUS_NETWORK address (host bits clear) */
    uint32_t mask;         /* ISTHMUS_NETWORK prefix as a mask */
    uint32_t image_base;   /* ISTHMUS_IMAGE (host bits clear) */
    uint32_t data_ip;      /* ISTHMUS_DATA address */
    uint16_t data_port;    /* ISTHMUS_DATA port */
    char agent_path[108];  /* ISTHMUS_AGENT_SOCKET (fits sockaddr_un.sun_path) */
    char cluster[254];     /* ISTHMUS_CLUSTER, lower case, no trailing dot; "" when unset */
    char hostname[65];     /* ISTHMUS_HOSTNAME (fits utsname.nodename); "" when unset */
    bool direct;           /* ISTHMUS_DIRECT=1: kernel-direct LAN streams (direct.c) */
};

struct addrinfo;
struct hostent;
struct ifaddrs;
struct if_nameindex;
struct msghdr;
struct utsname;

/*
 * The libc functions the hooks stand in for, resolved with dlsym(RTLD_NEXT). Prototypes that
 * glibc declares only under _GNU_SOURCE (recvmmsg, sendmmsg) use void * for the vector here.
 */
struct shim_real {
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*bind)(int, const struct sockaddr *, socklen_t);
    int (*getsockname)(int, struct sockaddr *, socklen_t *);
    int (*getpeername)(int, struct sockaddr *, socklen_t *);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*listen)(int, int);
    /* UDP (hooks_udp.c) */
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*sendmmsg)(int, void *, unsigned int, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    int (*recvmmsg)(int, void *, unsigned int, int, void *);
    ssize_t (*recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
    /* names (hooks_lookup.c, hooks_hostname.c) */
    int (*getaddrinfo)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    int (*getnameinfo)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t,
                       int);
    struct hostent *(*gethostbyname)(const char *);
    struct hostent *(*gethostbyname2)(const char *, int);
    int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t, struct hostent **,
                           int *);
    int (*gethostbyname2_r)(const char *, int, struct hostent *, char *, size_t,
                            struct hostent **, int *);
    struct hostent *(*gethostbyaddr)(const void *, socklen_t, int);
    int (*gethostbyaddr_r)(const void *, socklen_t, int, struct hostent *, char *, size_t,
                           struct hostent **, int *);
    int (*gethostname)(char *, size_t);
    int (*uname)(struct utsname *);
    /* interfaces (hooks_ifaces.c) */
    int (*getifaddrs)(struct ifaddrs **);
    void (*freeifaddrs)(struct ifaddrs *);
    int (*ioctl)(int, unsigned long, ...);
    unsigned int (*if_nametoindex)(const char *);
    char *(*if_indextoname)(unsigned int, char *);
    struct if_nameindex *(*if_nameindex)(void);
    /* io_uring (hooks_syscall.c) */
    long (*syscall)(long, ...);
};

extern struct shim_config shim_cfg;
extern struct shim_real shim_real;

/* init.c: idempotent and thread-safe; every hook calls it before anything else. */
void shim_init(void);
/* init.c: true while this thread runs shim_init's first call (a hook called from inside it,
   e.g. by an allocator during dlsym, must not call shim_init again). */
bool shim_initialising(void);
/* init.c: one line to stderr when ISTHMUS_DEBUG=1; formats on the stack, preserves errno. */
void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* addr.c: the VIP <-> loopback image mapping (pure functions of the configuration). */
bool addr_is_vip(uint32_t a);
uint32_t addr_to_image(uint32_t vip);
bool addr_is_image(uint32_t a);
uint32_t addr_from_image(uint32_t image);
/* "a.b.c.d" for logs; buf must hold 16 bytes. */
const char *addr_str(uint32_t a, char *buf);

/* addr.c: sockaddr helpers for AF_INET and v4-mapped AF_INET6. */
bool sa_get_v4(const struct sockaddr *sa, socklen_t len, uint32_t *ip, uint16_t *port);
socklen_t sa_make_v4(struct sockaddr_storage *out, int family, uint32_t ip, uint16_t port);
bool sa_is_unspecified(const struct sockaddr *sa, socklen_t len, bool *port_zero);
void sa_image_to_vip(struct sockaddr_storage *ss, socklen_t len);
void sa_copy_out(struct sockaddr *dst, socklen_t *dst_len, const struct sockaddr_storage *src,
                 socklen_t src_len);
/*
 * After the kernel copied an address out to a caller's buffer (copied = how many bytes it
 * wrote, full = the length it reported): rewrites an image address there to its VIP, touching
 * only those copied bytes. Does nothing if the address is not an image or was cut short before
 * its IP.
 */
void sa_image_to_vip_out(struct sockaddr *out, socklen_t copied, socklen_t full);

/*
 * peer_cache.c: the VIP:port (network order) and address family a socket was connected to
 * through the agent, keyed by SO_COOKIE. Lock-free, never allocates, preserves errno; without
 * SO_COOKIE (kernel < 4.12) put does nothing and get always misses.
 */
void peer_cache_put(int fd, uint32_t ip, uint16_t port, int family);
/* Or-ed into the family of an entry for a kernel-direct stream (direct.c): its kernel addresses are
   real LAN addresses, the entry's ip:port is the overlay peer and the local end is the own VIP. */
#define PEER_DIRECT 0x4000
/* The overlay port of an adopted direct stream's local end (the kernel's is the agent's listener). */
void peer_cache_put_local(int fd, uint16_t port);
bool peer_cache_get_local(int fd, uint16_t *port);
void peer_cache_forget(int fd);
bool peer_cache_get(int fd, uint32_t *ip, uint16_t *port, int *family);

/*
 * udp_route.c: makes sure the agent has a UDP proxy for remote VIP:port (network order),
 * asking it (UDP_ROUTE) when the last confirmation is missing or 30 s old. Returns 0 or the
 * errno to report (EHOSTUNREACH, ENETUNREACH, ...). Preserves errno.
 */
int udp_route_ensure(uint32_t vip, uint16_t port);

/*
 * hooks_udp.c: whether fd is a UDP socket the overlay serves (AF_INET, or AF_INET6 that takes
 * v4-mapped addresses); *wildcard tells whether its local address is the wildcard or it is
 * not bound yet, i.e. whether the kernel would pick the source address per datagram.
 * Preserves errno.
 */
bool udp_overlay_socket(int fd, bool *wildcard);

/*
 * hooks_connect.c: binds an unbound socket to image(own VIP):0 (SO_REUSEADDR if reuse); on return
 * *local holds the socket's local address. -1 with errno on failure.
 */
int bind_if_unbound(int fd, int family, bool reuse, struct sockaddr_storage *local,
                    socklen_t *llen);

/* agent_rpc.c */
enum {
    AGENT_OP_CONNECT = 1,
    AGENT_OP_PEER = 2,
    AGENT_OP_UDP_ROUTE = 3,
    AGENT_OP_RESOLVE_NAME = 4,
    AGENT_OP_RESOLVE_ADDR = 5,
    AGENT_OP_DIRECT = 6,
    AGENT_OP_ADOPT = 7,
    AGENT_OP_LISTEN = 8,
    AGENT_OP_DIRECT_PEER = 9,
};
enum { AGENT_FLAG_NONBLOCK = 1u };
/* Largest payload either way (a DNS name is at most 253 bytes). */
#define AGENT_PAYLOAD_MAX 255

struct agent_reply {
    int error;      /* 0 or a positive errno chosen by the agent */
    uint32_t ip;    /* PEER: VIP; RESOLVE_NAME: VIP (network order) */
    uint16_t port;  /* PEER: port, network order */
    size_t payload_len;
    char payload[AGENT_PAYLOAD_MAX + 1]; /* RESOLVE_*: canonical name, NUL added */
};

/*
 * One request on a fresh control connection. Returns 0 when the agent answered (the answer
 * may itself carry an error), or -1 with errno = EINTR (interrupted; the caller reports it as
 * is), ETIMEDOUT (no answer in time), a resource errno (EMFILE, ENFILE, ENOBUFS, ENOMEM),
 * or ENETUNREACH (agent absent or spoke nonsense).
 */
int agent_rpc(uint16_t op, uint32_t flags, uint32_t dst_ip, uint16_t dst_port, uint32_t src_ip,
              uint16_t src_port, struct agent_reply *reply);
/* The same with a request payload (at most AGENT_PAYLOAD_MAX bytes). CONNECT waits up to
   120 s for its answer, every other op 10 s. */
int agent_rpc_payload(uint16_t op, uint32_t flags, uint32_t dst_ip, uint16_t dst_port,
                      uint32_t src_ip, uint16_t src_port, const void *payload, size_t payload_len,
                      struct agent_reply *reply);

/*
 * The same, and a descriptor the answer carried (SCM_RIGHTS, close-on-exec) in *passed, else -1.
 */
int agent_rpc_fd(uint16_t op, uint32_t flags, uint32_t dst_ip, uint16_t dst_port, uint32_t src_ip,
                 uint16_t src_port, struct agent_reply *reply, int *passed);

/*
 * direct.c: kernel-direct LAN streams (docs/ARCHITECTURE.md, "Direct streams inside a site").
 * direct_connect: for an unbound TCP socket connecting to another VIP. Returns 1 when it handled
 * the connect (rc and errno are the result), 0 when the caller must take the router
 * path (the socket is then fresh and unbound, possibly a new socket under the same fd number).
 * direct_adopt: after accept returned cfd from an image peer, swaps in the direct stream's socket
 * if the agent has one for it and rewrites *ss (the peer) to its overlay address.
 */
int direct_connect(int fd, int family, uint32_t dst_ip, uint16_t dst_port, int saved, int *rc);
void direct_adopt(int cfd, int flags, struct sockaddr_storage *ss, socklen_t sl);
/* Whether fd's entry says it is a direct stream; peer_ip, peer_port: its overlay peer; family: the
   address family the program sees it in (AF_INET6 under a dual-stack listener or socket). */
bool direct_peer(int fd, uint32_t *peer_ip, uint16_t *peer_port, int *family);

/*
 * names.c: whether a host name is one to ask the agent about (see the file's header), and the
 * two questions. Both answers are false when the agent does not know, or cannot be asked;
 * the caller then goes to the real resolver. Both preserve errno.
 */
#define NAMES_CANON_SIZE (AGENT_PAYLOAD_MAX + 1)
bool names_is_candidate(const char *name);
bool names_resolve(const char *name, uint32_t *vip, char canon[NAMES_CANON_SIZE], bool *nxdomain);
bool names_reverse(uint32_t vip, char canon[NAMES_CANON_SIZE], bool *nxdomain);

#endif
