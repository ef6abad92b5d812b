/* Starting a task's process as the task's user the way posix_spawn starts one: the native
 * start of user_spawn.py (which says why), built from this file at first use and loaded
 * into the agent with ctypes.
 *
 * The process is made with clone(CLONE_VM | CLONE_VFORK): it borrows the agent's memory
 * until it execs, as with vfork, so no page table is copied (the fork this replaces cost
 * 14-25 ms an agent), and the calling thread waits until then. CPython's own vfork path
 * refuses a change of user because glibc's setuid and friends signal every thread of the
 * process to change theirs too, which a process sharing the agent's memory must not do;
 * here the child makes the raw system calls, which change its own credentials only.
 *
 * Between clone and exec the child runs on a stack of its own, makes system calls only,
 * and reports a failure through `struct start`, which it shares with its parent. Every
 * signal is blocked across the clone, so none of the agent's handlers can run in it; it
 * sets those back to the default before it unblocks them. */

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#define STACK_SIZE (1 << 16)
#define KERNEL_SIGSET 8 /* the kernel's sigset_t: 64 signals */
#define KERNEL_NSIG 64
#define KEEP_USER UINT32_MAX /* uid: no change of user */

/* The kernel's struct sigaction (handler, flags, restorer, mask): all zero is SIG_DFL, no
 * flags, nothing blocked, whatever the order of its fields. */
static const struct {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
} default_action;

struct start {
    const char *cwd;
    char *const *argv, *const *envp;
    uint32_t uid, gid;
    size_t ngroups;
    const uint32_t *groups;
    int out, err;
    long max_fd;
    volatile int error;
};

/* `fd` itself if it is not one of 0-2, else a copy that is (0-2 are about to be replaced). */
static int above_stdio(int fd)
{
    return fd < 0 || fd > 2 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

static int child(void *arg)
{
    struct start *s = arg;
    uint64_t none = 0;
    /* Handlers are the agent's (copied, not shared): a signal that came now would run
     * the agent's code in the agent's memory. The process starts with every disposition
     * the default, as a fresh process of the node's: exec keeps an ignored signal ignored,
     * and the agent may have inherited some (Python ignores SIGPIPE and SIGXFSZ; whatever
     * started the service may ignore others, glibc's own two, 32 and 33, among them, which
     * glibc's sigaction refuses to touch: hence the raw call). */
    for (int sig = 1; sig <= KERNEL_NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, &default_action, NULL, KERNEL_SIGSET);
    int devnull = above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
    int out = above_stdio(s->out), err = above_stdio(s->err);
    if (devnull < 0 || out < 0 || err < 0 || setsid() < 0 || dup2(devnull, 0) < 0 ||
        dup2(out, 1) < 0 || dup2(err, 2) < 0)
        goto failed;
    /* Nothing of the agent's but 0-2 (Popen's close_fds); close_range is Linux 5.9. */
    if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
        for (long fd = 3; fd < s->max_fd; fd++)
            close((int)fd);
    if (chdir(s->cwd) < 0)
        goto failed;
    /* Groups, then the group, then the user, each real, effective and saved, so nothing of
     * root's remains (the kernel drops the capabilities with the last uid 0). KEEP_USER:
     * the agent's own user, which a process of an agent that is not root keeps (only root
     * may set groups). */
    if (s->uid != KEEP_USER &&
        (syscall(SYS_setgroups, s->ngroups, s->groups) < 0 ||
         syscall(SYS_setresgid, s->gid, s->gid, s->gid) < 0 ||
         syscall(SYS_setresuid, s->uid, s->uid, s->uid) < 0))
        goto failed;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, KERNEL_SIGSET);
    execve(s->argv[0], s->argv, s->envp);
failed:
    s->error = errno ? errno : EINVAL;
    syscall(SYS_exit, 127);
    return 127;
}

/* Start argv (argv[0] the program's path; argv and envp NULL-terminated) in a new session
 * in `cwd`, as uid/gid with `groups` (uid KEEP_USER: as the caller's own user), stdin
 * /dev/null, stdout `out`, stderr `err`. Returns its pid, a child of the caller's, once it
 * has exec'd; -1 with *error set (errno) when it could not be made or a step before exec
 * failed (that process already collected). */
pid_t batchsite_spawn(const char *cwd, char *const argv[], char *const envp[], uint32_t uid,
                      uint32_t gid, size_t ngroups, const uint32_t *groups, int out, int err,
                      int *error)
{
    struct rlimit files = {1024, 1024};
    getrlimit(RLIMIT_NOFILE, &files);
    struct start s = {
        .cwd = cwd, .argv = argv, .envp = envp, .uid = uid, .gid = gid, .ngroups = ngroups,
        .groups = groups, .out = out, .err = err, .error = 0,
        .max_fd = files.rlim_cur == RLIM_INFINITY || files.rlim_cur > (1 << 20)
                      ? (1 << 20)
                      : (long)files.rlim_cur,
    };
    char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        *error = errno;
        return -1;
    }
    uint64_t all = ~(uint64_t)0, before;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &before, KERNEL_SIGSET);
    pid_t pid = clone(child, stack + STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &s);
    int cloned = errno;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &before, NULL, KERNEL_SIGSET);
    munmap(stack, STACK_SIZE);
    if (pid < 0) {
        *error = cloned;
        return -1;
    }
    if (s.error) {
        /* It never ran: collect it here, so that the caller has no zombie to know of. */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        *error = s.error;
        return -1;
    }
    return pid;
}
