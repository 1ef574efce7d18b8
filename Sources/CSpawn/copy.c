#define _GNU_SOURCE
#include "cspawn.h"
#include <errno.h>
#include <unistd.h>

int cohort_copy_file(int in_fd, int out_fd) {
    for (;;) {
        ssize_t copied = copy_file_range(in_fd, NULL, out_fd, NULL, (size_t)1 << 30, 0);
        if (copied == 0) return 0;
        if (copied > 0) continue;
        if (errno == EINTR) continue;
        if (errno != ENOSYS && errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP) return errno;
        break;  // not here: copy through a buffer
    }
    char buffer[1 << 16];
    for (;;) {
        ssize_t got = read(in_fd, buffer, sizeof buffer);
        if (got == 0) return 0;
        if (got < 0) { if (errno == EINTR) continue; return errno; }
        for (ssize_t done = 0; done < got;) {
            ssize_t put = write(out_fd, buffer + done, (size_t)(got - done));
            if (put < 0) { if (errno == EINTR) continue; return errno; }
            done += put;
        }
    }
}
