/*
 * gethostname() and uname(): the node's own name.
 *
 * When the cluster asks for it (`node_hostname = true`, so `isthmus run` sets
 * ISTHMUS_HOSTNAME=NODE), programs see the overlay node name as the host name. Many of them
 * (MPI launchers, Spark, Hadoop) resolve their own host name and advertise the result, which
 * then is the node's VIP. Otherwise both calls are untouched.
 *
 * Not _GNU_SOURCE, for the reason given at the top of hooks_connect.c.
 */
#undef _GNU_SOURCE
#define _DEFAULT_SOURCE 1
#include "shim.h"

#include <errno.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static bool renamed(void)
{
    return shim_cfg.enabled && shim_cfg.hostname[0] != '\0';
}

SHIM_EXPORT int gethostname(char *name, size_t len)
{
    shim_init();
    if (shim_real.gethostname == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!renamed())
        return shim_real.gethostname(name, len);
    /* As glibc does it: copy what fits, and fail with ENAMETOOLONG if the terminating NUL did
       not fit. */
    size_t n = strlen(shim_cfg.hostname) + 1;
    if (n > len) {
        if (len > 0)
            memcpy(name, shim_cfg.hostname, len);
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(name, shim_cfg.hostname, n);
    return 0;
}

SHIM_EXPORT int uname(struct utsname *buf)
{
    shim_init();
    if (shim_real.uname == NULL) {
        errno = ENOSYS;
        return -1;
    }
    int rc = shim_real.uname(buf);
    if (rc == 0 && renamed()) {
        /* init.c only accepts names that fit nodename (64 bytes and the NUL). */
        memset(buf->nodename, 0, sizeof buf->nodename);
        memcpy(buf->nodename, shim_cfg.hostname, strlen(shim_cfg.hostname));
    }
    return rc;
}
