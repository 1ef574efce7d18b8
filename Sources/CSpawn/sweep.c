#include "cspawn.h"
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Whether the NUL-separated entries in buffer[0..<length] hold `needle` as a whole entry.
static int holds(const char *buffer, size_t length, const char *needle, size_t size) {
    const char *p = buffer, *end = buffer + length;
    while (p < end) {
        const char *zero = memchr(p, 0, (size_t)(end - p));
        size_t entry = zero ? (size_t)(zero - p) : (size_t)(end - p);
        if (entry == size && memcmp(p, needle, size) == 0) return 1;
        p += entry + 1;
    }
    return 0;
}

int cohort_last_pid(void) {
    int descriptor = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
    if (descriptor < 0) return -1;
    char text[32];
    ssize_t got = read(descriptor, text, sizeof text - 1);
    close(descriptor);
    if (got <= 0) return -1;
    text[got] = 0;
    return atoi(text);
}

// Whether process `pid` lives in the network namespace whose link text is `mine`.
static int in_namespace(const char *pid, const char *mine) {
    char path[64], link[128];
    snprintf(path, sizeof path, "/proc/%s/ns/net", pid);
    ssize_t got = readlink(path, link, sizeof link - 1);
    if (got <= 0) return 0;
    link[got] = 0;
    return strcmp(link, mine) == 0;
}

int cohort_kill_marked(const char *needle, int min_pid) { return cohort_kill_marked_in(&needle, 1, min_pid, 0); }

int cohort_kill_marked_in(const char *const needles[], int count, int min_pid, int same_netns) {
    return cohort_signal_marked(needles, count, NULL, 0, min_pid, same_netns, SIGKILL, NULL);
}

int cohort_signal_marked(const char *const needles[], int count, const char *const spared[], int spared_count,
                         int min_pid, int same_netns, int signal, int found[]) {
    if (found) memset(found, 0, sizeof(int) * (size_t)count);
    char mine[128] = "";
    if (same_netns) {
        ssize_t got = readlink("/proc/self/ns/net", mine, sizeof mine - 1);
        if (got <= 0) return 0;
        mine[got] = 0;
    }
    // One environment is at most ARG_MAX; a larger one is read in part (the marker is set by
    // Cohort among the first entries only if the task's own are few, so read it all).
    // Per call, freed at the end: every attempt runs on a thread of its own, and a
    // thread-local buffer was never freed when its thread ended (64 KiB a task, for ever).
    size_t capacity = 1 << 16;
    char *buffer = malloc(capacity);
    if (!buffer) return 0;
    pid_t me = getpid();
    int matched = 0;
    DIR *proc = opendir("/proc");
    if (!proc) { free(buffer); return 0; }
    struct dirent *entry;
    char path[64];
    while ((entry = readdir(proc))) {
        if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
        pid_t pid = (pid_t)atoi(entry->d_name);
        if (pid == me || pid < min_pid) continue;  // older than the attempt: not its process
        // Another node's process (a virtual cluster shares one /proc): a readlink, cheaper
        // than reading its environment.
        if (same_netns && !in_namespace(entry->d_name, mine)) continue;
        snprintf(path, sizeof path, "/proc/%s/environ", entry->d_name);
        int descriptor = open(path, O_RDONLY | O_CLOEXEC);
        if (descriptor < 0) continue;
        size_t length = 0;
        for (;;) {
            if (length == capacity) {
                char *grown = realloc(buffer, capacity * 2);
                if (!grown) break;
                buffer = grown;
                capacity *= 2;
            }
            ssize_t got = read(descriptor, buffer + length, capacity - length);
            if (got <= 0) break;
            length += (size_t)got;
        }
        close(descriptor);
        // A zombie's environ reads empty: it is gone, whoever has yet to reap it.
        int marked = -1;
        for (int n = 0; n < count && marked < 0; n++) if (holds(buffer, length, needles[n], strlen(needles[n]))) marked = n;
        if (marked < 0) continue;
        int spare = 0;
        for (int n = 0; n < spared_count && !spare; n++) spare = holds(buffer, length, spared[n], strlen(spared[n]));
        if (spare) continue;
        if (signal > 0 && kill(pid, signal) != 0) continue;
        if (found) found[marked]++;
        matched++;
    }
    closedir(proc);
    free(buffer);
    return matched;
}
