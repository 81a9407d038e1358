/*
 * ist_uring
 *
 * Tries to set up an io_uring the way runtimes probe for it, syscall(__NR_io_uring_setup).
 * Under the shim this must fail with ENOSYS, so that the program falls back to plain socket
 * calls the shim can see.
 *
 * stdout  IO_URING errno=NAME    setup failed; exit 0 if NAME is ENOSYS, else 1
 *         IO_URING ok            setup succeeded (the ring is closed again); exit 1
 */
#include "common.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    long fd = syscall(__NR_io_uring_setup, 4, &params);
    if (fd >= 0) {
        out("IO_URING ok");
        close((int)fd);
        return 1;
    }
    int e = errno;
    out("IO_URING errno=%s", errno_name(e));
    return e == ENOSYS ? 0 : 1;
}
