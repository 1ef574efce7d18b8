#ifndef COHORT_CSPAWN_H
#define COHORT_CSPAWN_H
#include <sys/types.h>

/// Starts `argv` (searched on PATH if it has no '/') with exactly `envp`, in `cwd`, stdin
/// from /dev/null, stdout and stderr appended to the given files (NULL: inherit), in a new
/// process group led by the child when `new_group` is set. Returns 0 or an errno value.
int cohort_spawn(pid_t *pid, const char *file, char *const argv[], char *const envp[],
                 const char *cwd, const char *stdout_path, const char *stderr_path, int new_group);

#endif
