/* osu_get_bw twin: rank 0 gets a window of 64 messages of `size` bytes from rank 1's
   window, then flushes, inside one passive-target epoch (MPI_Win_lock shared; OSU's
   `-s flush`). Bandwidth = bytes fetched / time.
   MPI_UINT8_T, the datatype the Swift binding sends a [UInt8] as (OSU uses MPI_CHAR, which
   Open MPI 4.1's osc/sm moves faster: 0.02 against 0.04 us a 1-byte put here). */
#include "osu_common.h"
#define WINDOW 64

int main(int argc, char **argv) {
    int rank;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    osu_require_two_ranks("osu_get");
    int max_size = osu_max_size(argc, argv, 1 << 18);
    char *r_buf = osu_buffer((size_t)max_size * WINDOW, 0);
    char *w_buf;
    MPI_Win win;
    MPI_Win_allocate((MPI_Aint)max_size * WINDOW, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &w_buf, &win);
    memset(w_buf, 'b', (size_t)max_size * WINDOW);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) printf("# OSU MPI_Get Bandwidth Test (C)\n%-10s%20s\n", "# Size", "Bandwidth (MB/s)");
    for (int size = 1; size <= max_size; size *= 2) {
        int iterations = size > 8192 ? 20 : 100, skip = size > 8192 ? 2 : 10;
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            double start = 0;
            MPI_Win_lock(MPI_LOCK_SHARED, 1, 0, win);
            for (int i = 0; i < iterations + skip; i++) {
                if (i == skip) start = MPI_Wtime();
                for (int j = 0; j < WINDOW; j++)
                    MPI_Get(r_buf + (size_t)j * size, size, MPI_UINT8_T, 1, (MPI_Aint)j * size, size, MPI_UINT8_T, win);
                MPI_Win_flush(1, win);
            }
            double stop = MPI_Wtime();
            MPI_Win_unlock(1, win);
            printf("%-10d%20.2f\n", size, (double)size * WINDOW * iterations / 1e6 / (stop - start));
            fflush(stdout);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    MPI_Win_free(&win);
    free(r_buf);
    MPI_Finalize();
    return 0;
}
