// cohort-spawner: the parent of every task `cohort serve` starts, so that a task's result
// outlives a killed server. One per server, started with it; never exec'd per task.
//
// stdin: requests from the server, each a little-endian u32 length and then NUL-terminated
//   fields: id, directory, stdout file, stderr file, exit-status file, argc, the arguments,
//   envc, the environment entries.
// stdout: one line per event: "S id pid" (started), "F id errno" (could not start),
//   "X id exited|signaled value" (ended).
// When a task ends, "exited CODE START END" or "signaled SIGNAL START END" (seconds since
// 1970) is written to its exit-status file first (to a temporary name, then renamed), so a
// restarted server reads each result whole, or not at all. If the server dies (stdin
// closes), the spawner goes on reaping and writing results until its last task has ended.
#define _GNU_SOURCE
#include "cspawn.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t pid;
    char *id;
    char *status_file;
    double start;
} Task;

static Task *tasks;
static size_t task_count, task_capacity;
static int server_alive = 1;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

// Events to the server; once it is gone (EPIPE), nothing more is said.
static void say(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *format, ...) {
    if (!server_alive) return;
    char line[512];
    va_list arguments;
    va_start(arguments, format);
    int length = vsnprintf(line, sizeof line, format, arguments);
    va_end(arguments);
    if (length <= 0) return;
    const char *p = line;
    size_t left = (size_t)length;
    while (left > 0) {
        ssize_t written = write(1, p, left);
        if (written < 0) {
            if (errno == EINTR) continue;
            server_alive = 0;
            return;
        }
        p += written;
        left -= (size_t)written;
    }
}

static void write_status(const char *path, const char *how, int value, double start, double end) {
    if (!path || !*path) return;
    char temporary[4096];
    if (snprintf(temporary, sizeof temporary, "%s.tmp", path) >= (int)sizeof temporary) return;
    int descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (descriptor < 0) return;
    FILE *file = fdopen(descriptor, "w");
    if (!file) { close(descriptor); return; }
    // No fsync: this guards against the server dying, not the machine.
    fprintf(file, "%s %d %.6f %.6f\n", how, value, start, end);
    if (fclose(file) == 0) rename(temporary, path);
}

static void reap(void) {
    for (;;) {
        int how;
        pid_t pid = waitpid(-1, &how, WNOHANG);
        if (pid <= 0) return;
        double end = now();
        for (size_t i = 0; i < task_count; i++) {
            if (tasks[i].pid != pid) continue;
            const char *kind = WIFSIGNALED(how) ? "signaled" : "exited";
            int value = WIFSIGNALED(how) ? WTERMSIG(how) : WEXITSTATUS(how);
            write_status(tasks[i].status_file, kind, value, tasks[i].start, end);
            say("X %s %s %d\n", tasks[i].id, kind, value);
            free(tasks[i].id);
            free(tasks[i].status_file);
            tasks[i] = tasks[--task_count];
            break;
        }
    }
}

// Splits a request into its fields; returns how many, or -1 if malformed.
static int fields(char *payload, uint32_t length, char **out, int capacity) {
    int count = 0;
    char *p = payload, *end = payload + length;
    while (p < end) {
        char *zero = memchr(p, 0, (size_t)(end - p));
        if (!zero || count == capacity) return -1;
        out[count++] = p;
        p = zero + 1;
    }
    return count;
}

static void start(char *payload, uint32_t length) {
    static char *field[65536];
    int n = fields(payload, length, field, 65536);
    if (n < 7) {
        // Refused, but always under its id when the id is there: the server's attempt thread
        // waits for an answer to exactly that request.
        const char *id = memchr(payload, 0, length) && *payload ? payload : "?";
        say("F %s %d\n", id, n < 0 ? E2BIG : EINVAL);
        return;
    }
    char *id = field[0], *directory = field[1], *out = field[2], *err = field[3], *status = field[4];
    int argc = atoi(field[5]);
    if (argc < 1 || 6 + argc >= n) { say("F %s %d\n", id, EINVAL); return; }
    int envc = atoi(field[6 + argc]);
    if (envc < 0 || 7 + argc + envc != n) { say("F %s %d\n", id, EINVAL); return; }
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    char **envp = calloc((size_t)envc + 1, sizeof *envp);
    if (!argv || !envp) { free(argv); free(envp); say("F %s %d\n", id, ENOMEM); return; }
    memcpy(argv, field + 6, (size_t)argc * sizeof *argv);
    memcpy(envp, field + 7 + argc, (size_t)envc * sizeof *envp);
    double started = now();
    pid_t pid;
    int rc = cohort_spawn(&pid, argv[0], argv, envp, *directory ? directory : NULL, *out ? out : NULL, *err ? err : NULL, 1);
    free(argv);
    free(envp);
    if (rc != 0) { say("F %s %d\n", id, rc); return; }
    if (task_count == task_capacity) {
        task_capacity = task_capacity ? task_capacity * 2 : 64;
        tasks = realloc(tasks, task_capacity * sizeof *tasks);
        if (!tasks) abort();
    }
    tasks[task_count++] = (Task){pid, strdup(id), strdup(status), started};
    say("S %s %d\n", id, (int)pid);
}

int main(void) {
    // The server's signals (Ctrl-C in its terminal, SIGTERM) are not for the spawner: it
    // must outlive the server. Tasks get every signal at its default (cohort_spawn).
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sigset_t children;
    sigemptyset(&children);
    sigaddset(&children, SIGCHLD);
    sigprocmask(SIG_BLOCK, &children, NULL);
    int child_events = signalfd(-1, &children, SFD_CLOEXEC | SFD_NONBLOCK);
    if (child_events < 0) { perror("cohort-spawner: signalfd"); return 1; }

    size_t size = 1 << 16, used = 0;
    char *buffer = malloc(size);
    int reading = 1;
    for (;;) {
        struct pollfd watched[2] = {{child_events, POLLIN, 0}, {0, POLLIN, 0}};
        if (poll(watched, reading ? 2 : 1, -1) < 0 && errno != EINTR) { perror("cohort-spawner: poll"); return 1; }
        if (watched[0].revents) {
            struct signalfd_siginfo info;
            while (read(child_events, &info, sizeof info) > 0) {}
            reap();
        }
        if (reading && watched[1].revents) {
            if (used == size) { size *= 2; buffer = realloc(buffer, size); if (!buffer) abort(); }
            ssize_t got = read(0, buffer + used, size - used);
            if (got <= 0) {
                if (got < 0 && errno == EINTR) continue;
                reading = 0;  // the server is gone: finish what runs, then leave
                server_alive = 0;
            } else {
                used += (size_t)got;
                size_t offset = 0;
                while (used - offset >= 4) {
                    uint32_t length;
                    memcpy(&length, buffer + offset, 4);
                    if (used - offset - 4 < length) {
                        if (length + 4 > size) { size = (size_t)length + 4; buffer = realloc(buffer, size); if (!buffer) abort(); }
                        break;
                    }
                    start(buffer + offset + 4, length);
                    offset += 4 + length;
                }
                memmove(buffer, buffer + offset, used - offset);
                used -= offset;
            }
        }
        reap();
        if (!reading && task_count == 0) return 0;
    }
}
