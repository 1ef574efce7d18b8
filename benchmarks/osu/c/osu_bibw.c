/* osu_bibw twin: both ranks post 64 receives and 64 sends per window. */
#include "osu_common.h"
#define WINDOW 64

int main(int argc, char **argv) {
    int rank;
    MPI_Init(&argc, &argv);
    osu_require_two_ranks("osu_bibw");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int peer = 1 - rank;
    int max_size = osu_max_size(argc, argv, 4 << 20);
    char *s_buf = osu_buffer(max_size, 1), *r_buf = osu_buffer(max_size, 0);
    MPI_Request sends[WINDOW], receives[WINDOW];
    if (rank == 0) printf("# OSU MPI Bi-Directional Bandwidth Test (C)\n%-10s%20s\n", "# Size", "Bandwidth (MB/s)");
    for (int size = 1; size <= max_size; size *= 2) {
        int iterations = size > 8192 ? 20 : 100, skip = size > 8192 ? 2 : 10;
        double start = 0;
        MPI_Barrier(MPI_COMM_WORLD);
        for (int i = 0; i < iterations + skip; i++) {
            if (i == skip) start = MPI_Wtime();
            for (int j = 0; j < WINDOW; j++) MPI_Irecv(r_buf, size, MPI_CHAR, peer, 10, MPI_COMM_WORLD, &receives[j]);
            for (int j = 0; j < WINDOW; j++) MPI_Isend(s_buf, size, MPI_CHAR, peer, 10, MPI_COMM_WORLD, &sends[j]);
            MPI_Waitall(WINDOW, sends, MPI_STATUSES_IGNORE);
            MPI_Waitall(WINDOW, receives, MPI_STATUSES_IGNORE);
        }
        double seconds = MPI_Wtime() - start;
        if (rank == 0) {
            printf("%-10d%20.2f\n", size, size / 1e6 * iterations * WINDOW * 2 / seconds);
            fflush(stdout);
        }
    }
    free(s_buf);
    free(r_buf);
    MPI_Finalize();
    return 0;
}
