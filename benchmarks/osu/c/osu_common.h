/* The C twins of benchmarks/osu/swift: same sizes, OSU's loop counts, OSU's format. */
#ifndef OSU_COMMON_H
#define OSU_COMMON_H
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int osu_max_size(int argc, char **argv, int fallback) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--max-size") == 0) return atoi(argv[i + 1]);
    return fallback;
}

/* Page-aligned, as OSU's own buffers are: the figures then measure MPI, not malloc's offsets. */
static void *osu_buffer(size_t bytes, int fill) {
    void *buffer = NULL;
    if (posix_memalign(&buffer, 4096, bytes)) { perror("posix_memalign"); MPI_Abort(MPI_COMM_WORLD, 1); }
    memset(buffer, fill, bytes);
    return buffer;
}

static void osu_require_two_ranks(const char *name) {
    int size, rank;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (size != 2) {
        if (rank == 0) printf("%s needs exactly 2 ranks\n", name);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}
#endif
