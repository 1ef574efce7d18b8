#ifndef COHORT_CSPAWN_H
#define COHORT_CSPAWN_H
#include <sys/types.h>

/// Starts `argv` (searched on PATH if it has no '/') with exactly `envp`, in `cwd`, stdin
/// from /dev/null, stdout and stderr appended to the given files (NULL: inherit), in a new
/// process group led by the child when `new_group` is set. Returns 0 or an errno value.
int cohort_spawn(pid_t *pid, const char *file, char *const argv[], char *const envp[],
                 const char *cwd, const char *stdout_path, const char *stderr_path, int new_group);

/// The same with stdin (-1: /dev/null), stdout and stderr onto the given descriptors (pipes whose other ends the
/// caller reads; opened close-on-exec, so only these copies reach the child).
int cohort_spawn_fds(pid_t *pid, const char *file, char *const argv[], char *const envp[],
                     const char *cwd, int stdin_fd, int stdout_fd, int stderr_fd, int new_group);

/// pipe2(O_CLOEXEC), which Swift cannot reach: no other child may inherit either end.
/// Returns 0 or an errno value.
int cohort_pipe(int fds[2]);

/// The GNU build id of the ELF file at `path` as lowercase hex (NUL-terminated in `out`);
/// 0, or -1 if it has none or cannot be read.
int cohort_build_id(const char *path, char *out, size_t size);

/// Copies the whole of `in_fd` to `out_fd` in the kernel (copy_file_range: a reflink where
/// the filesystem has them, else no bytes through user space; read/write where it is not
/// supported). Returns 0 or an errno value.
int cohort_copy_file(int in_fd, int out_fd);

/// Sends SIGKILL to every process but the caller whose environment holds exactly the entry
/// `needle` (`NAME=VALUE`) and whose pid is at least `min_pid` (0: any); returns how many. A
/// scan of /proc in C: it runs after every attempt, so it must cost microseconds per
/// process, not a Foundation file read each.
int cohort_kill_marked(const char *needle, int min_pid);

/// The same for any of `count` entries (one scan for many attempts), limited to processes in
/// the caller's network namespace when `same_netns` is set: a node agent's sweep on a
/// virtual cluster of namespaces that share one process table must not reach another
/// node's processes (on a real node it changes nothing).
int cohort_kill_marked_in(const char *const needles[], int count, int min_pid, int same_netns);

/// The general scan behind both: every process (but the caller) holding one of `count`
/// entries and none of `spared_count` entries `spared`, pid at least `min_pid`, in the
/// caller's network namespace if `same_netns`. Each is sent `signal` (0: none, only counted);
/// `found[n]`, if given, counts those holding `needles[n]`. Returns how many matched (with a
/// signal: how many it reached). A restarted controller spares the attempts it adopts while
/// it ends the rest of their job, and watches adopted attempts by counting.
int cohort_signal_marked(const char *const needles[], int count, const char *const spared[], int spared_count,
                         int min_pid, int same_netns, int signal, int found[]);

/// The last pid the kernel handed out in this pid namespace (/proc/sys/kernel/ns_last_pid),
/// or -1 if it cannot be read.
int cohort_last_pid(void);

/// Reads and sets the variables of one environment (the process's, or a dictionary's).
typedef const char * (*cohort_env_get)(void * context, const char *name);
typedef void (*cohort_env_set)(void * context, const char *name, const char *value);

/// Ranks on node `index` of `nodes`: `per_node` each, or `total` (if not -1) spread as Slurm
/// does, the first nodes holding one more.
long cohort_ranks_on_node(long index, long nodes, long total, long per_node);
/// The node (index in the group) that holds `rank`, ranks numbered node by node.
long cohort_node_of_rank(long rank, long nodes, long total, long per_node);

/// Sets the per-node variables of one rank of a managed MPI task (COHORT_NODE_ID, the working
/// directory, Azure's names, the job preparation directory, CUDA_VISIBLE_DEVICES) from the
/// group's (COHORT_GROUP_NODES, COHORT_PROCESSES_PER_NODE, COHORT_RANKS, COHORT_GROUP_GPUS,
/// COHORT_GPUS_PER_RANK), for `rank` (mpirun's), or if it is -1 for the node named
/// `node_name` (srun's). Returns the node's index in the group, or -1 if nothing was set.
long cohort_rank_environment(long rank, const char * node_name, cohort_env_get get, cohort_env_set set, void * context);

/// What every rank runs through: the process's per-node variables as above (from
/// OMPI_COMM_WORLD_RANK or SLURMD_NODENAME), into COHORT_WORKING_DIR, no signal blocked,
/// then execvp(argv). Returns only if exec failed: its errno.
int cohort_rank_exec(char * const argv[]);

#endif
