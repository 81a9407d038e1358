/*
 * isthmus-seccomp-launch: the native half of `isthmus run --mode seccomp`.
 *
 *   isthmus-seccomp-launch CTLFD TRAPS PATH ARGV0 [ARGS...]
 *
 * Started by the supervisor (the C# `isthmus run` process, which stays our parent), it
 *   1. becomes the WATCHDOG: PR_SET_PDEATHSIG(SIGUSR1) tells it when the supervisor dies, and as a
 *      child subreaper it inherits every orphaned descendant of the program; it ignores terminal
 *      signals (they are the program's to handle) and forks the program;
 *   2. the child (the future program) asks for SIGKILL when the watchdog dies, restores the signal
 *      dispositions the launcher started with, resets the signal mask and SIGPIPE (.NET changes
 *      both, exec keeps them), and sets NO_NEW_PRIVS (required to install a filter without
 *      CAP_SYS_ADMIN);
 *   3. installs the filter below with SECCOMP_FILTER_FLAG_NEW_LISTENER, plus
 *      SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV where the kernel has it (5.19): once the supervisor
 *      has received a notification, only a fatal signal interrupts the trapped call, so Go's
 *      SIGURG preemption cannot make a connect restart in a loop;
 *   4. tells the supervisor the listener's fd NUMBER and its own pid over CTLFD and waits for a
 *      one-byte acknowledgement; the supervisor copies the fd out with pidfd_getfd(2);
 *   5. closes its own copy of the listener and CTLFD, and execs PATH.
 * The watchdog reaps the program and every descendant and exits as the program did (same code,
 * or killed by the same signal) once none is left. If the supervisor dies, it SIGKILLs the
 * program and every descendant instead (docs/ARCHITECTURE.md, "seccomp mode"): without a
 * supervisor every trapped call would fail with ENOSYS, a half-working program.
 *
 * Why pidfd_getfd rather than SCM_RIGHTS: the listener only exists once the filter is active, and
 * from then on sendmsg may be a trapped call (TRAPS bit 1), whose notification nobody could
 * answer yet: the launcher would hang on itself. write/read/close/execve are never trapped, and
 * the supervisor, as our ancestor with our credentials, passes pidfd_getfd's ptrace-attach check
 * (also under Yama ptrace_scope 1). Titus instead sends the fd from a helper thread cloned before
 * the filter; that needs threads here, this needs nothing.
 *
 * CTLFD messages (native byte order, one write each): the program's process sends three int32s,
 * {listener fd, filter flags used, its pid} on success or {-errno, stage, 0} on failure (then exits 125);
 * the supervisor answers one byte once it holds the listener. EOF instead of the byte means the
 * supervisor is gone: exit 125 without running anything.
 *
 * TRAPS: bit 0 = also trap sendmsg/sendmmsg (opt-in: .NET and others send TCP data with sendmsg),
 *        bit 1 = trap sendto when its address argument is non-NULL (UDP to VIPs),
 *        bit 2 = trap recvfrom when its address argument is non-NULL (UDP sources: image -> VIP),
 *        bit 3 = do not ask for WAIT_KILLABLE_RECV (behave as on a kernel before 5.19; for tests),
 *        bit 4 = also trap recvmsg/recvmmsg (opt-in with bit 0: UDP sources through them).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SECCOMP_RET_USER_NOTIF
#define SECCOMP_RET_USER_NOTIF 0x7fc00000U
#endif
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

#if defined(__x86_64__)
#define FILTER_ARCH AUDIT_ARCH_X86_64
/* x32 system calls share the x86_64 arch value and set this bit in the number. */
#define X32_SYSCALL_BIT 0x40000000U
#elif defined(__aarch64__)
#define FILTER_ARCH AUDIT_ARCH_AARCH64
#else
#error "isthmus-seccomp-launch: unsupported architecture"
#endif

enum { TRAP_SENDMSG = 1, TRAP_SENDTO = 2, TRAP_RECVFROM = 4, NO_WAIT_KILLABLE = 8, TRAP_RECVMSG = 16 };
enum { STAGE_PDEATHSIG = 1, STAGE_NO_NEW_PRIVS = 2, STAGE_FILTER = 3 };

#define EXIT_CANNOT_RUN 125

/* Offsets into struct seccomp_data. args[4] is 64 bits; a classic BPF load reads 32. */
#define OFF_NR offsetof(struct seccomp_data, nr)
#define OFF_ARCH offsetof(struct seccomp_data, arch)
#define OFF_ARG4_LO (offsetof(struct seccomp_data, args) + 4 * sizeof(uint64_t))
#define OFF_ARG4_HI (OFF_ARG4_LO + sizeof(uint32_t))

#define MAX_INSNS 64

struct builder {
    struct sock_filter insn[MAX_INSNS];
    unsigned n;
};

static void emit(struct builder *b, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
    if (b->n < MAX_INSNS)
        b->insn[b->n] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
    b->n++;
}

/* "if nr == number: return action", with the accumulator holding nr. */
static void when_nr(struct builder *b, uint32_t number, uint32_t action)
{
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, number);
    emit(b, BPF_RET | BPF_K, 0, 0, action);
}

/*
 * "if nr == number and args[4] != 0: return action; if nr == number: allow". send() and recv() are
 * sendto/recvfrom with a NULL address (args[4]) and must stay free: every TCP data call is one.
 * The accumulator holds nr on entry and on the fall-through exit.
 */
static void when_nr_arg4(struct builder *b, uint32_t number, uint32_t action)
{
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 6, number);
    emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0, OFF_ARG4_LO);
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0);
    emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0, OFF_ARG4_HI);
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0);
    emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    emit(b, BPF_RET | BPF_K, 0, 0, action);
}

static int build_filter(struct builder *b, unsigned traps)
{
    const uint32_t notify = SECCOMP_RET_USER_NOTIF;
    const uint32_t enosys = SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA);

    /* A foreign architecture (i386 via int 0x80, with its socketcall multiplexer) would bypass
       every rule below: such a process is killed rather than left unsupervised. `isthmus run`
       refuses 32-bit programs before getting here. */
    emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0, OFF_ARCH);
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, FILTER_ARCH);
    emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);

    emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0, OFF_NR);
#ifdef X32_SYSCALL_BIT
    /* x32 numbers alias the socket calls (x32 connect = 42 | bit): refuse them all. */
    emit(b, BPF_JMP | BPF_JGE | BPF_K, 0, 1, X32_SYSCALL_BIT);
    emit(b, BPF_RET | BPF_K, 0, 0, enosys);
#endif

    /* io_uring's CONNECT/ACCEPT/SENDMSG ops would bypass the filter; runtimes (Tokio, libuv)
       fall back to plain calls on ENOSYS. */
    when_nr(b, __NR_io_uring_setup, enosys);

    /* The calls that name or report an address. listen is not trapped: the image is bound
       at bind() time and there is nothing to register when listening (the preload shim does not
       hook it either). Data calls (read/write/send/recv) are never trapped. */
    when_nr(b, __NR_connect, notify);
    when_nr(b, __NR_bind, notify);
    when_nr(b, __NR_accept, notify);
    when_nr(b, __NR_accept4, notify);
    when_nr(b, __NR_getsockname, notify);
    when_nr(b, __NR_getpeername, notify);
    if (traps & TRAP_SENDMSG) {
        when_nr(b, __NR_sendmsg, notify);
        when_nr(b, __NR_sendmmsg, notify);
    }
    if (traps & TRAP_RECVMSG) {
        when_nr(b, __NR_recvmsg, notify);
        when_nr(b, __NR_recvmmsg, notify);
    }
    if (traps & TRAP_SENDTO) /* sendto(fd, buf, len, flags, dest_addr, addrlen) */
        when_nr_arg4(b, __NR_sendto, notify);
    if (traps & TRAP_RECVFROM) /* recvfrom(fd, buf, len, flags, src_addr, addrlen) */
        when_nr_arg4(b, __NR_recvfrom, notify);
    emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    return b->n <= MAX_INSNS ? 0 : -1;
}

static int install_filter(unsigned traps, unsigned long *used)
{
    struct builder b = {.n = 0};
    if (build_filter(&b, traps) < 0) {
        errno = E2BIG;
        return -1;
    }
    struct sock_fprog prog = {.len = (unsigned short)b.n, .filter = b.insn};
    unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if (!(traps & NO_WAIT_KILLABLE))
        flags |= SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (fd < 0 && errno == EINVAL && (flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)) {
        /* Before 5.19: no WAIT_KILLABLE_RECV. Signals then interrupt trapped calls, which are
           restarted and notified again; the supervisor's handlers are idempotent for that. */
        flags = SECCOMP_FILTER_FLAG_NEW_LISTENER;
        fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    }
    *used = flags;
    return (int)fd;
}

static void report(int ctl, int32_t a, int32_t b, int32_t c)
{
    int32_t msg[3] = {a, b, c};
    ssize_t n;
    do
        n = write(ctl, msg, sizeof msg);
    while (n < 0 && errno == EINTR);
}

static void fail(int ctl, int stage, const char *what)
{
    int e = errno;
    fprintf(stderr, "isthmus-seccomp-launch: %s: %s\n", what, strerror(e));
    report(ctl, -e, stage, 0);
    _exit(EXIT_CANNOT_RUN);
}

/*
 * Before 5.19 any signal interrupts a trapped call while the supervisor works on it; the call is
 * then restarted and notified again. Go's runtime preempts goroutines with SIGURG every 10 ms,
 * which can make a slow connect restart forever (libseccomp #387, agentsh #225), so Go programs
 * are asked not to (GODEBUG=asyncpreemptoff=1; other programs ignore the variable). A program
 * that set asyncpreemptoff itself keeps its choice.
 */
static void go_without_async_preemption(void)
{
    const char *old = getenv("GODEBUG");
    if (old != NULL && strstr(old, "asyncpreemptoff") != NULL)
        return;
    char value[1024];
    int n = snprintf(value, sizeof value, "%s%sasyncpreemptoff=1", old ? old : "",
                     old && *old ? "," : "");
    if (n > 0 && (size_t)n < sizeof value)
        setenv("GODEBUG", value, 1);
}

/* The watchdog's signals: terminal signals reach the whole foreground group, the watchdog must
   outlive them so the program can handle them; the program gets back what the launcher started with. */
static const int watchdog_ignores[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGPIPE};
#define N_IGNORED (sizeof watchdog_ignores / sizeof watchdog_ignores[0])
static struct sigaction original[N_IGNORED];

static volatile sig_atomic_t supervisor_gone;

static void on_supervisor_death(int sig)
{
    (void)sig;
    supervisor_gone = 1;
}

/* The program: filter, hand-over, exec. Runs in the child; never returns. */
static void run_program(int ctl, unsigned traps, const char *path, char **argv, pid_t watchdog)
{
    /* PDEATHSIG survives execve (of a non-setuid program, and NO_NEW_PRIVS keeps it so): if the
       watchdog dies, so does the program. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        fail(ctl, STAGE_PDEATHSIG, "prctl(PR_SET_PDEATHSIG)");
    if (getppid() != watchdog)
        _exit(EXIT_CANNOT_RUN);

    for (size_t i = 0; i < N_IGNORED; i++)
        sigaction(watchdog_ignores[i], &original[i], NULL);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGPIPE, SIG_DFL); /* .NET ignores it; exec would keep that */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail(ctl, STAGE_NO_NEW_PRIVS, "prctl(PR_SET_NO_NEW_PRIVS)");

    unsigned long used = 0;
    int listener = install_filter(traps, &used);
    if (listener < 0)
        fail(ctl, STAGE_FILTER, "seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER)");

    if (!(used & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV))
        go_without_async_preemption();

    report(ctl, listener, (int32_t)used, (int32_t)getpid());
    char ack;
    ssize_t n;
    do
        n = read(ctl, &ack, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
        /* The supervisor is gone: running the program now would leave every trapped call
           failing with ENOSYS. */
        _exit(EXIT_CANNOT_RUN);
    }
    close(listener);
    close(ctl);

    execv(path, argv);
    int e = errno;
    fprintf(stderr, "isthmus: cannot execute %s: %s\n", path, strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}

/* SIGKILL to every child of this process; orphaned descendants become children (subreaper). */
static void kill_children(void)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return;
    pid_t self = getpid();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 1)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        /* "pid (comm) S ppid ...": comm may hold spaces and parentheses, so parse after the last ')'. */
        char *close_paren = strrchr(buf, ')');
        char state;
        long ppid;
        if (close_paren != NULL && sscanf(close_paren + 1, " %c %ld", &state, &ppid) == 2 && ppid == self)
            kill((pid_t)pid, SIGKILL);
    }
    closedir(d);
}

/*
 * The watchdog: the program's parent and a child subreaper, outside the filter. It reaps the
 * program and every orphaned descendant, and exits like the program did once none is left. If the
 * supervisor dies (PDEATHSIG SIGUSR1), it kills the whole tree: the program and every descendant
 * (all of them end up as its children), so nothing is left running with trapped calls that fail
 * with ENOSYS.
 */
static int watch(pid_t program)
{
    int program_status = 0;
    bool reaped = false;
    /* Ends when no child is left (ECHILD): every iteration reaps one or handles a signal. */
    for (;;) {
        if (supervisor_gone)
            kill_children();
        int st;
        pid_t r = waitpid(-1, &st, 0);
        if (r == program) {
            program_status = st;
            reaped = true;
        } else if (r < 0 && errno != EINTR) {
            break;
        }
    }
    if (!reaped)
        return EXIT_CANNOT_RUN;
    if (WIFSIGNALED(program_status)) {
        int sig = WTERMSIG(program_status);
        signal(sig, SIG_DFL);
        sigset_t just;
        sigemptyset(&just);
        sigaddset(&just, sig);
        sigprocmask(SIG_UNBLOCK, &just, NULL);
        prctl(PR_SET_DUMPABLE, 0); /* no core file of the watchdog for the program's SIGSEGV */
        raise(sig);
    }
    return WEXITSTATUS(program_status);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: isthmus-seccomp-launch CTLFD TRAPS PATH ARGV0 [ARGS...]\n"
                        "(started by 'isthmus run --mode seccomp', not by hand)\n");
        return EXIT_CANNOT_RUN;
    }
    int ctl = atoi(argv[1]);
    unsigned traps = (unsigned)strtoul(argv[2], NULL, 10);
    const char *path = argv[3];
    if (ctl < 3 || fcntl(ctl, F_GETFD) < 0) {
        fprintf(stderr, "isthmus-seccomp-launch: bad control fd '%s'\n", argv[1]);
        return EXIT_CANNOT_RUN;
    }

    pid_t supervisor = getppid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_supervisor_death; /* no SA_RESTART: waitpid returns EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* PDEATHSIG fires when the supervisor's spawning thread (its main thread) ends. If the
       supervisor died before this line, its end of ctl is closed and the program never starts. */
    if (prctl(PR_SET_PDEATHSIG, SIGUSR1) < 0)
        fail(ctl, STAGE_PDEATHSIG, "prctl(PR_SET_PDEATHSIG)");
    if (getppid() != supervisor)
        return EXIT_CANNOT_RUN;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        fail(ctl, STAGE_PDEATHSIG, "prctl(PR_SET_CHILD_SUBREAPER)");
    struct sigaction ignore;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    for (size_t i = 0; i < N_IGNORED; i++)
        sigaction(watchdog_ignores[i], &ignore, &original[i]);

    pid_t watchdog = getpid();
    pid_t program = fork();
    if (program < 0)
        fail(ctl, STAGE_PDEATHSIG, "fork");
    if (program == 0)
        run_program(ctl, traps, path, argv + 4, watchdog);
    close(ctl);
    return watch(program);
}
