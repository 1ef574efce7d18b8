/* osu_iallreduce twin (its pure-communication latency): MPI_Iallreduce of floats with
   MPI_SUM started and waited for at once, barrier between iterations, average over ranks. */
#include "osu_common.h"

int main(int argc, char **argv) {
    int rank, nranks;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int max_size = osu_max_size(argc, argv, 1 << 20);
    float *s_buf = osu_buffer(max_size, 0), *r_buf = osu_buffer(max_size, 0);
    for (int i = 0; i < max_size / 4; i++) s_buf[i] = 1;
    if (rank == 0) printf("# OSU MPI Iallreduce Latency Test (C)\n%-10s%20s\n", "# Size", "Avg Latency(us)");
    for (int size = 4; size <= max_size; size *= 2) {
        int count = size / (int)sizeof(float);
        int iterations = size > 8192 ? 100 : 1000, skip = size > 8192 ? 10 : 100;
        double total = 0;
        MPI_Barrier(MPI_COMM_WORLD);
        for (int i = 0; i < iterations + skip; i++) {
            MPI_Request request;
            double start = MPI_Wtime();
            MPI_Iallreduce(s_buf, r_buf, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request);
            MPI_Wait(&request, MPI_STATUS_IGNORE);
            double stop = MPI_Wtime();
            if (i >= skip) total += stop - start;
            MPI_Barrier(MPI_COMM_WORLD);
        }
        double latency = total * 1e6 / iterations, sum = 0;
        MPI_Reduce(&latency, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
        if (rank == 0) {
            printf("%-10d%20.2f\n", size, sum / nranks);
            fflush(stdout);
        }
    }
    free(s_buf);
    free(r_buf);
    MPI_Finalize();
    return 0;
}
