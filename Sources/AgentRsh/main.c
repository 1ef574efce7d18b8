// cohort-rsh: the remote shell mpirun uses under Cohort (`--mca plm_rsh_agent cohort-rsh`).
// mpirun calls it as it would call ssh: `cohort-rsh [-x] [-l user] HOST WORD...`. Instead of
// opening an ssh connection per daemon, it asks the Cohort controller that started mpirun
// (through the Unix socket named by COHORT_AGENT_SOCKET) to run the words on HOST through
// the node's agent, on the channel the controller already keeps; the daemon's output comes
// back here and its exit code becomes this program's. C and static: mpirun starts one per
// node at once, and each must cost a millisecond, not a Swift runtime's start.
//
// Request: a 4-byte big-endian length, then NUL-terminated fields: HOST, then each WORD.
// Answer: frames of one kind byte (1 stdout, 2 stderr, 3 exit), a 4-byte big-endian length
// and the data (for exit: the code as 4 bytes, big-endian).
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int write_all(int fd, const void *data, size_t size) {
    const char *p = data;
    while (size > 0) {
        ssize_t wrote = write(fd, p, size);
        if (wrote < 0 && errno == EINTR) continue;
        if (wrote <= 0) return -1;
        p += wrote;
        size -= (size_t)wrote;
    }
    return 0;
}

static int read_all(int fd, void *data, size_t size) {
    char *p = data;
    while (size > 0) {
        ssize_t got = read(fd, p, size);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        p += got;
        size -= (size_t)got;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *path = getenv("COHORT_AGENT_SOCKET");
    if (!path || !*path) {
        fprintf(stderr, "cohort-rsh: COHORT_AGENT_SOCKET is not set (mpirun starts cohort-rsh under Cohort only)\n");
        return 255;
    }
    int i = 1;
    while (i < argc && argv[i][0] == '-') {  // ssh-style options mpirun may add (-x, -l USER)
        if (strcmp(argv[i], "-l") == 0 && i + 1 < argc) i++;
        i++;
    }
    if (i + 1 >= argc) {
        fprintf(stderr, "usage: cohort-rsh HOST COMMAND...\n");
        return 255;
    }
    size_t size = 0;
    for (int k = i; k < argc; k++) size += strlen(argv[k]) + 1;
    if (size > (1u << 20)) { fprintf(stderr, "cohort-rsh: command too long\n"); return 255; }
    char *request = malloc(size + 4);
    if (!request) return 255;
    uint32_t length = htonl((uint32_t)size);
    memcpy(request, &length, 4);
    size_t offset = 4;
    for (int k = i; k < argc; k++) {
        size_t n = strlen(argv[k]) + 1;
        memcpy(request + offset, argv[k], n);
        offset += n;
    }

    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path) { fprintf(stderr, "cohort-rsh: socket path too long\n"); return 255; }
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        fprintf(stderr, "cohort-rsh: cannot reach the Cohort controller at %s: %s\n", path, strerror(errno));
        return 255;
    }
    if (write_all(fd, request, offset) != 0) { fprintf(stderr, "cohort-rsh: the controller closed the connection\n"); return 255; }
    free(request);

    char *buffer = NULL;
    size_t capacity = 0;
    for (;;) {
        unsigned char header[5];
        if (read_all(fd, header, 5) != 0) break;
        uint32_t n = ((uint32_t)header[1] << 24) | ((uint32_t)header[2] << 16) | ((uint32_t)header[3] << 8) | header[4];
        if (n > (16u << 20)) break;
        if (n > capacity) {
            char *grown = realloc(buffer, n);
            if (!grown) break;
            buffer = grown;
            capacity = n;
        }
        if (n > 0 && read_all(fd, buffer, n) != 0) break;
        if (header[0] == 1) write_all(1, buffer, n);
        else if (header[0] == 2) write_all(2, buffer, n);
        else if (header[0] == 3 && n == 4) {
            unsigned char *c = (unsigned char *)buffer;
            return (int)(((uint32_t)c[0] << 24) | ((uint32_t)c[1] << 16) | ((uint32_t)c[2] << 8) | c[3]) & 0xff;
        }
    }
    fprintf(stderr, "cohort-rsh: the controller's connection ended before the command did\n");
    return 255;
}
