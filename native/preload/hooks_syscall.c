/*
 * syscall(): io_uring_setup fails with ENOSYS.
 *
 * io_uring's CONNECT, ACCEPT, SENDMSG and SOCKET operations run in the kernel without passing
 * through any libc function, so they would bypass every other hook (interposition brief,
 * "io_uring"). Runtimes that probe io_uring with syscall(2) (Tokio, libuv, liburing before
 * 2.2) fall back to plain sockets when setup says ENOSYS, as on kernels without io_uring.
 * Everything else is forwarded with all six argument registers, which is what the real
 * syscall() reads whatever the call's arity. (liburing 2.2+ issues the system call itself;
 * only the planned seccomp mode covers that.)
 *
 * Not _GNU_SOURCE, for the reason given at the top of hooks_connect.c.
 */
#undef _GNU_SOURCE
#define _DEFAULT_SOURCE 1
#include "shim.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425 /* the same number on every architecture */
#endif

SHIM_EXPORT long syscall(long number, ...)
{
    va_list ap;
    va_start(ap, number);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    /* An allocator that calls syscall() while the shim's own start-up (dlsym) allocates must
       not re-enter pthread_once on this thread: that would deadlock. */
    if (!shim_initialising())
        shim_init();
    if (number == SYS_io_uring_setup && shim_cfg.enabled) {
        shim_log("io_uring_setup -> ENOSYS");
        errno = ENOSYS;
        return -1;
    }
    if (shim_real.syscall == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return shim_real.syscall(number, a1, a2, a3, a4, a5, a6);
}
