// Each rank's per-node variables (its node's id, working directory, GPUs, ...), computed from
// its rank (mpirun's OMPI_COMM_WORLD_RANK) or its node's name (srun's SLURMD_NODENAME) and the
// group's variables that every rank inherits. In C because every rank of every managed MPI
// task starts through it (`cohort-rank-env`): a Swift runtime's start cost 35 ms a rank.
// `cohort rank-env` and `TaskEnvironment` call the same code, so there is one rule.
#define _GNU_SOURCE
#include "cspawn.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char **items;
    int count;
} List;

// Splits `text` at `separator`; empty pieces are dropped unless `keep_empty`.
static List split(const char *text, char separator, int keep_empty) {
    List list = {NULL, 0};
    if (text == NULL) return list;
    size_t length = strlen(text);
    list.items = calloc(length + 2, sizeof(char *));
    if (list.items == NULL) return list;
    const char *start = text;
    for (const char *p = text;; p++) {
        if (*p == separator || *p == '\0') {
            if (keep_empty || p > start) list.items[list.count++] = strndup(start, (size_t)(p - start));
            if (*p == '\0') break;
            start = p + 1;
        }
    }
    return list;
}

static void release(List list) {
    for (int i = 0; i < list.count; i++) free(list.items[i]);
    free(list.items);
}

// A positive whole number, or -1.
static long positive(const char *text) {
    if (text == NULL || *text == '\0') return -1;
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    return (errno == 0 && *end == '\0' && value > 0) ? value : -1;
}

long cohort_ranks_on_node(long index, long nodes, long total, long per_node) {
    if (total < 0) return per_node;
    return total / nodes + (index < total % nodes ? 1 : 0);
}

long cohort_node_of_rank(long rank, long nodes, long total, long per_node) {
    long first = 0;
    for (long index = 0; index < nodes; index++) {
        first += cohort_ranks_on_node(index, nodes, total, per_node);
        if (rank < first) return index;
    }
    return nodes - 1;
}

static void set_joined(cohort_env_set set, void *context, const char *name, const char *a, const char *b, const char *c) {
    size_t size = strlen(a) + strlen(b) + strlen(c) + 1;
    char *value = malloc(size);
    if (value == NULL) return;
    snprintf(value, size, "%s%s%s", a, b, c);
    set(context, name, value);
    free(value);
}

// The variables of node `index` of the group.
static void apply_node(long index, List nodes, cohort_env_get get, cohort_env_set set, void *context) {
    const char *attempt_directory = get(context, "COHORT_ATTEMPT_DIR");
    if (attempt_directory == NULL) return;
    const char *node = nodes.items[index];
    char *directory;
    const char *start = get(context, "COHORT_START_DIR");
    if (start != NULL) {
        directory = strdup(start);
    } else if (asprintf(&directory, "%s/node-%s", attempt_directory, node) < 0) {
        return;
    }
    if (directory == NULL) return;
    char number[24];
    snprintf(number, sizeof number, "%ld", index);
    set(context, "COHORT_NODE_ID", node);
    set(context, "COHORT_NODE_INDEX", number);
    set(context, "COHORT_WORKING_DIR", directory);
    set(context, "AZ_BATCH_NODE_ID", node);
    set(context, "AZ_BATCH_IS_CURRENT_NODE_MASTER", index == 0 ? "true" : "false");
    set(context, "AZ_BATCH_TASK_WORKING_DIR", directory);
    free(directory);
    const char *root = get(context, "COHORT_JOB_PREP_ROOT");
    if (root != NULL) {
        char *copy = strdup(root);  // `set` may replace what `get` returned
        if (copy != NULL) {
            set_joined(set, context, "COHORT_JOB_PREP_DIR", copy, "/", node);
            set_joined(set, context, "AZ_BATCH_JOB_PREP_DIR", copy, "/", node);
            set_joined(set, context, "AZ_BATCH_JOB_PREP_WORKING_DIR", copy, "/", node);
            free(copy);
        }
    }
    List groups = split(get(context, "COHORT_GROUP_GPUS"), ';', 1);
    if (index < groups.count) {
        set(context, "CUDA_VISIBLE_DEVICES", groups.items[index]);
        set(context, "COHORT_GPUS", groups.items[index]);
    }
    release(groups);
}

// With COHORT_GPUS_PER_RANK, narrows the node's GPUs to the rank's own share.
static void apply_rank_gpus(long local_rank, cohort_env_get get, cohort_env_set set, void *context) {
    long share = positive(get(context, "COHORT_GPUS_PER_RANK"));
    const char *gpus = get(context, "COHORT_GPUS");
    if (share < 0 || gpus == NULL) return;
    List devices = split(gpus, ',', 0);
    size_t size = strlen(gpus) + 1;
    char *own = calloc(size, 1);
    if (own != NULL) {
        for (long i = local_rank * share; i >= 0 && i < devices.count && i < (local_rank + 1) * share; i++) {
            if (*own != '\0') strcat(own, ",");
            strcat(own, devices.items[i]);
        }
        set(context, "CUDA_VISIBLE_DEVICES", own);
        set(context, "COHORT_GPUS", own);
        free(own);
    }
    release(devices);
}

long cohort_rank_environment(long rank, const char *node_name, cohort_env_get get, cohort_env_set set, void *context) {
    List nodes = split(get(context, "COHORT_GROUP_NODES"), ',', 0);
    long index = -1;
    if (nodes.count == 0) goto done;
    if (rank >= 0) {
        long per_node = positive(get(context, "COHORT_PROCESSES_PER_NODE"));
        if (per_node < 0) goto done;
        // Uneven shares (COHORT_RANKS below nodes × per node): the first nodes hold one more.
        long total = positive(get(context, "COHORT_RANKS"));
        if (total == nodes.count * per_node) total = -1;
        index = cohort_node_of_rank(rank, nodes.count, total, per_node);
        apply_node(index, nodes, get, set, context);
        long first = 0;
        for (long i = 0; i < index; i++) first += cohort_ranks_on_node(i, nodes.count, total, per_node);
        apply_rank_gpus(rank - first, get, set, context);
    } else if (node_name != NULL) {
        for (int i = 0; i < nodes.count; i++) {
            if (strcmp(nodes.items[i], node_name) == 0) { index = i; break; }
        }
        if (index >= 0) apply_node(index, nodes, get, set, context);
    }
done:
    release(nodes);
    return index;
}

static const char *process_get(void *context, const char *name) {
    (void)context;
    return getenv(name);
}

static void process_set(void *context, const char *name, const char *value) {
    (void)context;
    setenv(name, value, 1);
}

int cohort_rank_exec(char *const argv[]) {
    if (argv == NULL || argv[0] == NULL) return EINVAL;
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    char *end = NULL;
    long number = rank != NULL && *rank != '\0' ? strtol(rank, &end, 10) : -1;
    if (end != NULL && *end != '\0') number = -1;
    cohort_rank_environment(number, number < 0 ? getenv("SLURMD_NODENAME") : NULL, process_get, process_set, NULL);
    const char *directory = getenv("COHORT_WORKING_DIR");
    if (directory != NULL && chdir(directory) != 0) { /* the application says where it is */ }
    // A signal mask survives exec: the application must see mpirun's SIGTERM and a warning
    // signal, as when started from a shell.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], argv);
    return errno;
}
