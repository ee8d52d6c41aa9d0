/* A static probe for seccomp and capability tests: for each argument, make one system call
 * and print NAME=0 on success or NAME=ERRNO. `euid` prints the effective uid. Arguments are
 * passed to syscall(2) as longs, so `vsock_high` really sets the upper half of the register. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *t = argv[i];
        long v = -1;
        errno = 0;
        if (!strcmp(t, "euid")) {
            printf("euid=%d\n", (int)geteuid());
            continue;
        } else if (!strcmp(t, "unshare_ns")) {
            v = syscall(SYS_unshare, (long)CLONE_NEWNS);
        } else if (!strcmp(t, "unshare_user")) {
            v = syscall(SYS_unshare, (long)CLONE_NEWUSER);
        } else if (!strcmp(t, "mount")) {
            v = mount("none", "/mnt", "tmpfs", 0, NULL);
        } else if (!strcmp(t, "keyctl")) {
            /* KEYCTL_GET_KEYRING_ID of KEY_SPEC_SESSION_KEYRING, creating it. */
            v = syscall(SYS_keyctl, 0L, -3L, 1L);
        } else if (!strcmp(t, "ptrace")) {
            v = syscall(SYS_ptrace, (long)PTRACE_TRACEME, 0L, 0L, 0L);
        } else if (!strcmp(t, "vsock")) {
            v = syscall(SYS_socket, 40L, (long)SOCK_STREAM, 0L);
        } else if (!strcmp(t, "vsock_high")) {
            v = syscall(SYS_socket, 40L | (1L << 32), (long)SOCK_STREAM, 0L);
        } else if (!strcmp(t, "alg_high")) {
            v = syscall(SYS_socket, 38L | (1L << 32), (long)SOCK_SEQPACKET, 0L);
        } else if (!strcmp(t, "unix")) {
            v = syscall(SYS_socket, (long)AF_UNIX, (long)SOCK_STREAM, 0L);
        } else if (!strcmp(t, "clone3")) {
            v = syscall(SYS_clone3, 0L, 0L);
        } else {
            printf("%s=unknown\n", t);
            continue;
        }
        printf("%s=%d\n", t, v < 0 ? errno : 0);
    }
    return 0;
}
