/* osu_latency twin: ping-pong one-way latency. */
#include "osu_common.h"

int main(int argc, char **argv) {
    int rank;
    MPI_Init(&argc, &argv);
    osu_require_two_ranks("osu_latency");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int max_size = osu_max_size(argc, argv, 4 << 20);
    char *s_buf = osu_buffer(max_size, 1), *r_buf = osu_buffer(max_size, 0);
    MPI_Status status;
    if (rank == 0) printf("# OSU MPI Latency Test (C)\n%-10s%20s\n", "# Size", "Latency (us)");
    for (int size = 1; size <= max_size; size *= 2) {
        int iterations = size > 8192 ? 1000 : 10000, skip = size > 8192 ? 10 : 100;
        double start = 0;
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            for (int i = 0; i < iterations + skip; i++) {
                if (i == skip) start = MPI_Wtime();
                MPI_Send(s_buf, size, MPI_CHAR, 1, 1, MPI_COMM_WORLD);
                MPI_Recv(r_buf, size, MPI_CHAR, 1, 1, MPI_COMM_WORLD, &status);
            }
            printf("%-10d%20.2f\n", size, (MPI_Wtime() - start) * 1e6 / (2.0 * iterations));
            fflush(stdout);
        } else {
            for (int i = 0; i < iterations + skip; i++) {
                MPI_Recv(r_buf, size, MPI_CHAR, 0, 1, MPI_COMM_WORLD, &status);
                MPI_Send(s_buf, size, MPI_CHAR, 0, 1, MPI_COMM_WORLD);
            }
        }
    }
    free(s_buf);
    free(r_buf);
    MPI_Finalize();
    return 0;
}
