// cohort-rank-env: what every rank of a managed MPI task starts through, as
// `cohort-rank-env PROGRAM ARGS...` (mpirun and srun start it once per rank): it sets the
// variables that differ from node to node from the rank's number, moves into the node's
// working directory and becomes the program. C and static: a rank must start in a
// millisecond, not pay a Swift runtime's 35 ms (`cohort rank-env` does the same, slower).
#include "cspawn.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char *argv[]) {
    int first = 1;
    if (first < argc && strcmp(argv[first], "--") == 0) first++;
    if (first >= argc) {
        fprintf(stderr, "cohort-rank-env: no program given\n");
        return 64;
    }
    int error = cohort_rank_exec(&argv[first]);
    fprintf(stderr, "cohort-rank-env: cannot start %s: %s\n", argv[first], strerror(error));
    return 127;
}
