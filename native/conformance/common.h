/*
 * Shared helpers for the conformance programs (ist_server, ist_client, ist_probe).
 *
 * Output contract, relied on by tests/Isthmus.IntegrationTests: one machine-readable line per
 * event on stdout, flushed at once; errno values by symbolic name; addresses as IP:PORT, where
 * a v4-mapped IPv6 address prints as its IPv4 and any other IPv6 address as [ADDR]:PORT.
 */
#ifndef IST_COMMON_H
#define IST_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Exit codes shared by all programs. */
enum {
    EXIT_OK = 0,
    EXIT_CONNECT = 2,  /* connect or bind/listen error */
    EXIT_MISMATCH = 3, /* data differs from what was sent */
    EXIT_OTHER = 4,    /* anything else */
};

/* Symbolic errno name ("ECONNREFUSED"); unknown values print as "E<number>". */
const char *errno_name(int e);

/* printf to stdout followed by fflush, so lines reach a pipe immediately and in order. */
void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same on stderr (diagnostics for humans; tests parse stdout). */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Formats an AF_INET/AF_INET6 address as described above; buf should hold ADDR_BUF bytes. */
#define ADDR_BUF 64
const char *fmt_addr(const struct sockaddr *sa, socklen_t len, char *buf);
/* Formats getsockname / getpeername of fd, or "ERR:<errno name>". */
const char *fmt_local(int fd, char *buf);
const char *fmt_peer(int fd, char *buf);

/*
 * Builds a sockaddr from a textual address and port: dotted IPv4 gives AF_INET, anything with
 * a ':' gives AF_INET6. Returns false if the address does not parse.
 */
bool make_addr(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len);

/* Same IP and port (and family); ignores padding and IPv6 flow/scope. */
bool same_addr(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b, socklen_t blen);

/* Parses a decimal number in [0, max]; exits with EXIT_OTHER on garbage. */
unsigned long long parse_num(const char *s, unsigned long long max, const char *what);

/*
 * Deterministic byte stream (xorshift64 seeded from the total size), produced in order so a
 * sender and a checker can each keep one and never buffer the whole transfer.
 */
struct pattern {
    uint64_t state;
    uint64_t word;
    unsigned left; /* bytes of word not yet used */
};
void pattern_init(struct pattern *p, uint64_t seed);
void pattern_fill(struct pattern *p, unsigned char *buf, size_t n);

#endif
