// posix_spawn with the GNU chdir file action, which Swift cannot reach without _GNU_SOURCE.
#define _GNU_SOURCE
#include "cspawn.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <unistd.h>

// What both spawns share: no signal blocked and every handler at its default in the child,
// a process group of its own when asked; then posix_spawn(p) with `actions`, which it frees.
static int spawn_with(pid_t *pid, const char *file, char *const argv[], char *const envp[],
                      posix_spawn_file_actions_t *actions, int new_group) {
    posix_spawnattr_t attributes;
    int rc = posix_spawnattr_init(&attributes);
    if (rc) { posix_spawn_file_actions_destroy(actions); return rc; }
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);     // the child starts with no signal blocked
    posix_spawnattr_setsigdefault(&attributes, &all);   // and every handler at its default
    if (new_group) { flags |= POSIX_SPAWN_SETPGROUP; posix_spawnattr_setpgroup(&attributes, 0); }
    posix_spawnattr_setflags(&attributes, flags);
    if (strchr(file, '/')) rc = posix_spawn(pid, file, actions, &attributes, argv, envp);
    else rc = posix_spawnp(pid, file, actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(actions);
    posix_spawnattr_destroy(&attributes);
    return rc;
}

int cohort_spawn(pid_t *pid, const char *file, char *const argv[], char *const envp[],
                 const char *cwd, const char *stdout_path, const char *stderr_path, int new_group) {
    posix_spawn_file_actions_t actions;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc) return rc;
    // The order matters: open the output files relative to the caller's directory first.
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (stdout_path) posix_spawn_file_actions_addopen(&actions, 1, stdout_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (stderr_path) posix_spawn_file_actions_addopen(&actions, 2, stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (cwd) posix_spawn_file_actions_addchdir_np(&actions, cwd);
    // Nothing else of ours: a descriptor another thread has open for a moment (the write end
    // of a pipe Foundation's Process reads to its end, a socket, the database) would live as
    // long as the task does, and that reader would wait for the task.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    return spawn_with(pid, file, argv, envp, &actions, new_group);
}

int cohort_spawn_fds(pid_t *pid, const char *file, char *const argv[], char *const envp[],
                     const char *cwd, int stdin_fd, int stdout_fd, int stderr_fd, int new_group) {
    posix_spawn_file_actions_t actions;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc) return rc;
    if (stdin_fd < 0) posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    else posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
    posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
    if (cwd) posix_spawn_file_actions_addchdir_np(&actions, cwd);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // as above; the pipes are 0-2 by now
    return spawn_with(pid, file, argv, envp, &actions, new_group);
}

int cohort_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC) == 0 ? 0 : errno; }

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>

// The GNU build id in the PT_NOTE segments of the 64-bit ELF file at `path`, as hex.
int cohort_build_id(const char *path, char *out, size_t size) {
    if (size > 0) out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    Elf64_Ehdr header;
    int found = -1;
    if (pread(fd, &header, sizeof header, 0) == (ssize_t)sizeof header && memcmp(header.e_ident, ELFMAG, SELFMAG) == 0
        && header.e_ident[EI_CLASS] == ELFCLASS64 && header.e_phentsize == sizeof(Elf64_Phdr) && header.e_phnum < 256) {
        for (int i = 0; i < header.e_phnum && found != 0; i++) {
            Elf64_Phdr program;
            if (pread(fd, &program, sizeof program, (off_t)(header.e_phoff + (Elf64_Off)i * sizeof program)) != (ssize_t)sizeof program) break;
            if (program.p_type != PT_NOTE || program.p_filesz == 0 || program.p_filesz > 65536) continue;
            char *notes = malloc(program.p_filesz);
            if (!notes) break;
            if (pread(fd, notes, program.p_filesz, (off_t)program.p_offset) == (ssize_t)program.p_filesz) {
                size_t offset = 0;
                while (offset + sizeof(Elf64_Nhdr) <= program.p_filesz) {
                    const Elf64_Nhdr *note = (const Elf64_Nhdr *)(notes + offset);
                    size_t name = offset + sizeof(Elf64_Nhdr), desc = name + ((note->n_namesz + 3) & ~3u);
                    if (desc + note->n_descsz > program.p_filesz) break;
                    if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && memcmp(notes + name, "GNU", 4) == 0) {
                        size_t written = 0;
                        for (unsigned k = 0; k < note->n_descsz && written + 3 <= size; k++)
                            written += (size_t)snprintf(out + written, size - written, "%02x", (unsigned char)notes[desc + k]);
                        found = 0;
                        break;
                    }
                    offset = desc + ((note->n_descsz + 3) & ~3u);
                }
            }
            free(notes);
        }
    }
    close(fd);
    return found;
}
