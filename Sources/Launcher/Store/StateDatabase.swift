import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// The state directory's SQLite database, `cohort.sqlite`: WAL mode (a DatabasePool), one
/// versioned schema for pools, jobs, tasks, attempts and events.
enum StateDatabase {
    /// One connection pool per database file and process: stores are cheap to make, and the
    /// API server asks for pools on every request.
    nonisolated(unsafe) static var opened: [String: DatabasePool] = [:]
    static let openedLock = NSLock()

    /// Reads the whole file through SQLite's integrity check: `cohort serve` does, once at its
    /// start (it owns the state from then on). Opening does not: on a store of a million tasks
    /// (250 MB) the check takes 0.3 s warm and seconds cold, and every CLI command, `cohort run`
    /// too, paid it. Opening reads the header and the schema; damage met later in any page is
    /// named as well (`namingDamage`), and the file is never replaced.
    static func checkWholeFile(_ database: DatabasePool, path: String) throws {
        let check = try namingDamage(path) { try database.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") } }
        guard check == ["ok"] else {
            throw Damaged(description: "\(path) is damaged (SQLite's integrity check: \(check.prefix(3).joined(separator: "; "))). Restore it from a backup, or move it away to start with no jobs and pools")
        }
    }

    /// Runs `body`, naming a damaged file (SQLite's corrupt and not-a-database errors, met on
    /// any page) instead of passing on SQLite's message with its SQL.
    static func namingDamage<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as DatabaseError where error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB {
            throw Damaged(description: "\(path) is damaged (\(error.resultCode)). Restore it from a backup, or move it away to start with no jobs and pools")
        }
    }

    static func open(stateDirectory: String) throws -> (DatabasePool, String) {
        let path = "\(stateDirectory)/cohort.sqlite"
        openedLock.lock()
        defer { openedLock.unlock() }
        if let database = opened[path], FileManager.default.fileExists(atPath: path) { return (database, path) }
        let database = try openUncached(stateDirectory: stateDirectory, path: path)
        opened[path] = database
        return (database, path)
    }

    /// A state database that cannot be trusted: named, never silently replaced.
    public struct Damaged: Error, CustomStringConvertible {
        public var description: String
    }

    static func openUncached(stateDirectory: String, path: String) throws -> DatabasePool {
        try StateDirectory.prepare(stateDirectory)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)  // several cohort processes may write at once
        // WAL with synchronous=NORMAL: never corrupt, and a power loss can only drop the last
        // commits; an fsync per recorded attempt would cost task throughput.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        // Opening and migrating happen under an exclusive file lock: GRDB's migrator guards
        // against threads of one process, not against another cohort process migrating the
        // same new file at the same moment ("table job already exists").
        let lockPath = "\(path).lock"
        let descriptor = Glibc.open(lockPath, O_CREAT | O_RDWR, 0o600)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: lockPath]) }
        defer { close(descriptor) }
        flock(descriptor, LOCK_EX)
        defer { flock(descriptor, LOCK_UN) }
        // SQLite takes an empty file for a new database: a truncated one would silently
        // become an empty store, and every job in it would be forgotten. Checked under the
        // lock: another process creating the file holds it until the file is whole (or its
        // first pages are in the WAL beside it).
        var info = stat(), wal = stat()
        if stat(path, &info) == 0, info.st_size == 0, stat("\(path)-wal", &wal) != 0 || wal.st_size == 0 {
            throw Damaged(description: "\(path) is empty (0 bytes): it was truncated. Restore it from a backup, or remove it to start with no jobs and pools")
        }
        // Switching a new file to WAL can still meet SQLITE_BUSY from a reader that opened
        // before the lock was ours: try again a moment later.
        var tries = 0
        while true {
            do {
                let database = try DatabasePool(path: path, configuration: configuration)
                // The header and the schema (page 1 and the tables' definitions) can be read.
                _ = try database.read { db in try Row.fetchAll(db, sql: "SELECT type, name, rootpage, sql FROM sqlite_master") }
                try migrator.migrate(database)
                // Job environments and outputs' paths are in it: the user's alone. SQLite
                // gives its -wal and -shm files the database's mode when it makes them.
                for file in [path, "\(path)-wal", "\(path)-shm"] { _ = chmod(file, 0o600) }
                return database
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB {
                throw Damaged(description: "\(path) is damaged (\(error.resultCode)). Restore it from a backup, or move it away to start with no jobs and pools")
            } catch let error as DatabaseError where (error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED) && tries < 100 {
                tries += 1
                usleep(50_000)
            }
        }
    }

    /// The schema, one migration per version; applied in order, each once.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: jobs, tasks, attempts, events") { db in
            try db.execute(sql: """
                CREATE TABLE job (
                    id TEXT PRIMARY KEY,
                    pool TEXT NOT NULL,
                    priority INTEGER NOT NULL DEFAULT 0,
                    state TEXT NOT NULL,              -- active, running, completed
                    spec TEXT NOT NULL,               -- the JobSpec as JSON
                    submitted REAL NOT NULL,          -- seconds since 1970
                    started REAL,
                    finished REAL
                );
                CREATE TABLE task (
                    job_id TEXT NOT NULL REFERENCES job(id) ON DELETE CASCADE,
                    task_id TEXT NOT NULL,
                    replica INTEGER NOT NULL DEFAULT -1,   -- -1: no replicas
                    state TEXT NOT NULL,                   -- active, running, completed
                    result TEXT,                           -- success, failure
                    failure TEXT,                          -- Failure as JSON
                    PRIMARY KEY (job_id, task_id, replica)
                );
                CREATE TABLE attempt (
                    job_id TEXT NOT NULL REFERENCES job(id) ON DELETE CASCADE,
                    task_id TEXT NOT NULL,
                    replica INTEGER NOT NULL DEFAULT -1,
                    number INTEGER NOT NULL,
                    nodes TEXT NOT NULL,                   -- JSON list of node ids
                    node_count INTEGER NOT NULL,
                    cores INTEGER NOT NULL,                -- ranks (or 1 slot) it held
                    exit_code INTEGER,
                    start REAL NOT NULL,
                    end REAL,
                    directory TEXT NOT NULL,
                    record TEXT NOT NULL,                  -- the whole Attempt as JSON
                    PRIMARY KEY (job_id, task_id, replica, number)
                );
                CREATE INDEX attempt_by_start ON attempt(start);
                CREATE TABLE event (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    time REAL NOT NULL,
                    job_id TEXT,
                    kind TEXT NOT NULL,
                    message TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2: the process that runs a job") { db in
            // `cohort job cancel` signals it; `cohort wait` knows a job whose runner died.
            try db.execute(sql: "ALTER TABLE job ADD COLUMN runner_pid INTEGER")
        }
        migrator.registerMigration("v3: pools") { db in
            // A pool's definition and its nodes' states, as JSON: changed in one transaction,
            // so a running job and `cohort node drain` never lose each other's changes.
            try db.execute(sql: "CREATE TABLE pool (name TEXT PRIMARY KEY, definition TEXT NOT NULL)")
        }
        migrator.registerMigration("v4: which jobs the service owns") { db in
            // 'submit': queued for `cohort serve`, which takes a job back after a crash;
            // 'run': run by a `cohort run` process, whose tasks end with it.
            try db.execute(sql: "ALTER TABLE job ADD COLUMN origin TEXT NOT NULL DEFAULT 'run'")
        }
        migrator.registerMigration("v5: disabled jobs") { db in
            // Azure's disabled state: a held job's tasks do not start until it is enabled.
            try db.execute(sql: "ALTER TABLE job ADD COLUMN held INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v6: each job's task counts") { db in
            // Set when a job's tasks are stored (`JobStore.insert`, one row for them all: a
            // trigger per task inserted halved the rate of submissions), then kept by
            // triggers on every change of a task's result and every task deleted, whoever
            // makes it. Listing jobs (the API, `job list`, the dashboard) reads a row per job
            // instead of counting a million tasks (425 ms, then).
            try db.execute(sql: """
                CREATE TABLE job_counts (
                    job_id TEXT PRIMARY KEY REFERENCES job(id) ON DELETE CASCADE,
                    tasks INTEGER NOT NULL DEFAULT 0,
                    succeeded INTEGER NOT NULL DEFAULT 0,
                    failed INTEGER NOT NULL DEFAULT 0
                );
                INSERT INTO job_counts (job_id, tasks, succeeded, failed)
                    SELECT job_id, COUNT(*), SUM(result = 'success'), SUM(result = 'failure') FROM task GROUP BY job_id;
                CREATE TRIGGER task_recounted AFTER UPDATE OF result ON task WHEN OLD.result IS NOT NEW.result BEGIN
                    UPDATE job_counts SET succeeded = succeeded - (OLD.result IS 'success') + (NEW.result IS 'success'),
                                          failed = failed - (OLD.result IS 'failure') + (NEW.result IS 'failure')
                        WHERE job_id = NEW.job_id;
                END;
                CREATE TRIGGER task_uncounted AFTER DELETE ON task BEGIN
                    UPDATE job_counts SET tasks = tasks - 1, succeeded = succeeded - (OLD.result IS 'success'),
                                          failed = failed - (OLD.result IS 'failure')
                        WHERE job_id = OLD.job_id;
                END;
                """)
        }
        return migrator
    }

}
