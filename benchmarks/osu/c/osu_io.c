/* osu_io twin: every rank writes SIZE bytes at its own offset of one file together
 * (MPI_File_write_at_all), 20 times a size after 2 warm-ups; aggregate MB/s. The file
 * lives in /tmp (the page cache): this measures the MPI-IO path, not a disk. */
#include "osu_common.h"

int main(int argc, char **argv) {
    int rank, size_ranks;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size_ranks);
    int max_size = osu_max_size(argc, argv, 16 << 20);
    char *buffer = osu_buffer(max_size, 1);
    char path[64];
    int tag = rank == 0 ? (int)getpid() : 0;
    MPI_Bcast(&tag, 1, MPI_INT, 0, MPI_COMM_WORLD);
    snprintf(path, sizeof path, "/tmp/osu-io-c-%d.bin", tag);
    MPI_File file;
    MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_CREATE | MPI_MODE_WRONLY | MPI_MODE_DELETE_ON_CLOSE, MPI_INFO_NULL, &file);
    if (rank == 0) printf("# OSU-style MPI-IO collective write (C)\n%-10s%20s\n", "# Size", "Bandwidth (MB/s)");
    for (int size = 4096; size <= max_size; size *= 2) {
        int iterations = 20, skip = 2;
        double start = 0;
        MPI_Barrier(MPI_COMM_WORLD);
        for (int i = 0; i < iterations + skip; i++) {
            if (i == skip) { MPI_Barrier(MPI_COMM_WORLD); start = MPI_Wtime(); }
            MPI_File_write_at_all(file, (MPI_Offset)rank * size, buffer, size, MPI_CHAR, MPI_STATUS_IGNORE);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        double seconds = MPI_Wtime() - start;
        if (rank == 0) { printf("%-10d%20.2f\n", size, (double)size * size_ranks / 1e6 * iterations / seconds); fflush(stdout); }
    }
    MPI_File_close(&file);
    free(buffer);
    MPI_Finalize();
    return 0;
}
