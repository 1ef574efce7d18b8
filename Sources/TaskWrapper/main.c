// cohort-task-wrapper STATUS-FILE PROGRAM [ARGUMENT...]
//
// Runs a task's program as its child and, when it ends, writes how it ended to STATUS-FILE
// ("exited CODE START END" or "signaled SIGNAL START END", times in seconds since 1970),
// then ends the same way. `cohort serve` starts every task through it: if the server is
// killed, the task keeps running, and a restarted server reads its result from the file
// instead of running the task a second time. C, not Swift: it starts in well under a
// millisecond, so thousands of short tasks a second pay nothing for it.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

// Written to a temporary name and renamed: a reader sees the whole line or no file.
static void write_status(const char *path, const char *how, int value, double start, double end) {
    char temporary[4096];
    if (snprintf(temporary, sizeof temporary, "%s.tmp", path) >= (int)sizeof temporary) return;
    FILE *file = fopen(temporary, "w");
    if (!file) { fprintf(stderr, "cohort-task-wrapper: cannot write %s: %s\n", temporary, strerror(errno)); return; }
    fprintf(file, "%s %d %.6f %.6f\n", how, value, start, end);
    // No fsync: this guards against the server dying, not the machine; a power loss
    // loses the page cache and the server with it.
    if (fclose(file) != 0) return;
    rename(temporary, path);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: cohort-task-wrapper STATUS-FILE PROGRAM [ARGUMENT...]\n");
        return 2;
    }
    const char *status = argv[1];
    double start = now();
    // Signals sent to the task's process group (cancel, time limits) are for the program;
    // the wrapper lives on to write down how it ended. SIGKILL still ends both.
    int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) signal(forwarded[i], SIG_IGN);

    pid_t child = fork();
    if (child < 0) { perror("cohort-task-wrapper: fork"); return 127; }
    if (child == 0) {
        for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) signal(forwarded[i], SIG_DFL);
        execvp(argv[2], argv + 2);
        fprintf(stderr, "cohort: cannot start %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int how;
    while (waitpid(child, &how, 0) < 0) {
        if (errno != EINTR) { perror("cohort-task-wrapper: waitpid"); return 127; }
    }
    double end = now();
    if (WIFSIGNALED(how)) {
        int number = WTERMSIG(how);
        write_status(status, "signaled", number, start, end);
        // End by the same signal, so the server sees what the task saw (no core of ours).
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        signal(number, SIG_DFL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, number);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(number);
        return 128 + number;
    }
    int code = WEXITSTATUS(how);
    write_status(status, "exited", code, start, end);
    return code;
}
