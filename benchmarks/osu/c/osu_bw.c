/* osu_bw twin: a window of 64 MPI_Isend, Waitall, a 4-byte ack. */
#include "osu_common.h"
#define WINDOW 64

int main(int argc, char **argv) {
    int rank;
    MPI_Init(&argc, &argv);
    osu_require_two_ranks("osu_bw");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int max_size = osu_max_size(argc, argv, 4 << 20);
    char *s_buf = osu_buffer(max_size, 1), *r_buf = osu_buffer(max_size, 0), ack[4] = {0};
    MPI_Request requests[WINDOW];
    if (rank == 0) printf("# OSU MPI Bandwidth Test (C)\n%-10s%20s\n", "# Size", "Bandwidth (MB/s)");
    for (int size = 1; size <= max_size; size *= 2) {
        int iterations = size > 8192 ? 20 : 100, skip = size > 8192 ? 2 : 10;
        double start = 0;
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            for (int i = 0; i < iterations + skip; i++) {
                if (i == skip) start = MPI_Wtime();
                for (int j = 0; j < WINDOW; j++) MPI_Isend(s_buf, size, MPI_CHAR, 1, 100, MPI_COMM_WORLD, &requests[j]);
                MPI_Waitall(WINDOW, requests, MPI_STATUSES_IGNORE);
                MPI_Recv(ack, 4, MPI_CHAR, 1, 101, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            }
            double seconds = MPI_Wtime() - start;
            printf("%-10d%20.2f\n", size, size / 1e6 * iterations * WINDOW / seconds);
            fflush(stdout);
        } else {
            for (int i = 0; i < iterations + skip; i++) {
                for (int j = 0; j < WINDOW; j++) MPI_Irecv(r_buf, size, MPI_CHAR, 0, 100, MPI_COMM_WORLD, &requests[j]);
                MPI_Waitall(WINDOW, requests, MPI_STATUSES_IGNORE);
                MPI_Send(ack, 4, MPI_CHAR, 0, 101, MPI_COMM_WORLD);
            }
        }
    }
    free(s_buf);
    free(r_buf);
    MPI_Finalize();
    return 0;
}
