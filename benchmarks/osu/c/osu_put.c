/* osu_put_latency twin: rank 0 puts `size` bytes into rank 1's window and flushes, inside
   one passive-target epoch (MPI_Win_lock shared; OSU's `-s flush`); window from
   MPI_Win_allocate. Latency = time per put + flush.
   MPI_UINT8_T, the datatype the Swift binding sends a [UInt8] as (OSU uses MPI_CHAR, which
   Open MPI 4.1's osc/sm moves faster: 0.02 against 0.04 us a 1-byte put here). */
#include "osu_common.h"

int main(int argc, char **argv) {
    int rank;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    osu_require_two_ranks("osu_put");
    int max_size = osu_max_size(argc, argv, 1 << 20);
    char *s_buf = osu_buffer(max_size, 'a');
    char *w_buf;
    MPI_Win win;
    MPI_Win_allocate(max_size, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &w_buf, &win);
    if (rank == 0) printf("# OSU MPI_Put Latency Test (C)\n%-10s%20s\n", "# Size", "Latency (us)");
    for (int size = 1; size <= max_size; size *= 2) {
        int iterations = size > 8192 ? 1000 : 10000, skip = size > 8192 ? 10 : 100;
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            double start = 0;
            MPI_Win_lock(MPI_LOCK_SHARED, 1, 0, win);
            for (int i = 0; i < iterations + skip; i++) {
                if (i == skip) start = MPI_Wtime();
                MPI_Put(s_buf, size, MPI_UINT8_T, 1, 0, size, MPI_UINT8_T, win);
                MPI_Win_flush(1, win);
            }
            double stop = MPI_Wtime();
            MPI_Win_unlock(1, win);
            printf("%-10d%20.2f\n", size, (stop - start) * 1e6 / iterations);
            fflush(stdout);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    MPI_Win_free(&win);
    free(s_buf);
    MPI_Finalize();
    return 0;
}
