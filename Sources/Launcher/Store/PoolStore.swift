import Foundation
import GRDB

/// Pools and their nodes' states, kept in the state directory's database (`cohort.sqlite`
/// under `~/.cohort`, or `$COHORT_HOME`). The `local` pool always exists: built in until
/// it is changed (`cohort pool add local …`, a drain), stored from then on.
public struct PoolStore: Sendable {
    public let stateDirectory: String

    public struct StoreError: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
    }

    /// `$COHORT_HOME`, else `~/.cohort`.
    public static var defaultStateDirectory: String {
        if let home = ProcessInfo.processInfo.environment["COHORT_HOME"], !home.isEmpty { return home }
        return "\(NSHomeDirectory())/.cohort"
    }

    public static func validateName(_ name: String) throws(StoreError) {
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw StoreError(description: "pool names are 1-64 letters, digits, '-' or '_', found '\(name)'")
        }
    }

    /// Runs `body` on the database, turning any failure into a StoreError.
    func withDatabase<T>(_ body: (DatabasePool) throws -> T) throws(StoreError) -> T {
        do {
            let (database, path) = try StateDatabase.open(stateDirectory: stateDirectory)
            return try StateDatabase.namingDamage(path) { try body(database) }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(description: "the state database in \(stateDirectory): \(error)")
        }
    }

    static func decode(_ text: String, name: String) throws -> Pool {
        do { return try JSONDecoder().decode(Pool.self, from: Data(text.utf8)) } catch {
            throw StoreError(description: "pool \(name) is stored in a form this version cannot read: \(error)")
        }
    }

    static func encode(_ pool: Pool) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(pool), as: UTF8.self)
    }

    static func read(_ db: Database, _ name: String) throws -> Pool? {
        try String.fetchOne(db, sql: "SELECT definition FROM pool WHERE name = ?", arguments: [name]).map { try decode($0, name: name) }
    }

    static func known(_ db: Database) throws -> [String] {
        try String.fetchAll(db, sql: "SELECT name FROM pool ORDER BY name")
    }

    public func load(_ name: String) throws(StoreError) -> Pool {
        try Self.validateName(name)
        return try withDatabase { database in
            try database.read { db in
                if let pool = try Self.read(db, name) { return pool }
                if name == "local" { return Pool.local() }
                let names = Set(try Self.known(db) + ["local"]).sorted()
                throw StoreError(description: "unknown pool '\(name)' (known: \(names.joined(separator: ", ")))")
            }
        }
    }

    public func save(_ pool: Pool) throws(StoreError) {
        try Self.validateName(pool.name)
        if let problem = HostName.problem(pool: pool) { throw StoreError(description: "pool \(pool.name): \(problem)") }
        try withDatabase { database in
            try database.write { db in
                try db.execute(sql: "INSERT OR REPLACE INTO pool (name, definition) VALUES (?, ?)", arguments: [pool.name, try Self.encode(pool)])
            }
        }
    }

    /// Whether `name` is stored (the built-in local pool is not, until changed).
    public func isStored(_ name: String) -> Bool {
        (try? withDatabase { database in try database.read { db in try Self.read(db, name) != nil } }) ?? false
    }

    /// Reads, changes and writes one pool in one transaction, so that a running job and
    /// `cohort node drain` in another process never lose each other's changes.
    public func update(_ name: String, _ change: (inout Pool) throws -> Void) throws {
        try Self.validateName(name)
        try withDatabase { database in
            try database.write { db in
                guard var pool = try Self.read(db, name) ?? (name == "local" ? Pool.local() : nil) else {
                    throw StoreError(description: "unknown pool '\(name)'")
                }
                try change(&pool)
                try db.execute(sql: "INSERT OR REPLACE INTO pool (name, definition) VALUES (?, ?)", arguments: [name, try Self.encode(pool)])
            }
        }
    }

    /// Applies what a runner learned of a node, field by field in one transaction: a drain
    /// (offline) made by an admin meanwhile stands, and only the sweeps named change.
    public func apply(_ change: JobRunner.NodeChange, node id: String, pool name: String) throws {
        try update(name) { pool in
            guard let index = pool.nodes.firstIndex(where: { $0.id == id }) else { return }
            switch change {
            case .unusable(let reason):
                if pool.nodes[index].state != .offline {
                    pool.nodes[index].state = .unusable
                    pool.nodes[index].stateReason = reason
                }
                // When it comes back, the pool's start task runs there again.
                if pool.nodes[index].startTask?.succeeded == true { pool.nodes[index].startTask = nil }
            case .sweepPending(let attempt):
                if !(pool.nodes[index].pendingSweeps ?? []).contains(attempt) { pool.nodes[index].pendingSweeps = (pool.nodes[index].pendingSweeps ?? []) + [attempt] }
            case .swept(let attempts):
                pool.nodes[index].pendingSweeps?.removeAll { attempts.contains($0) }
                if pool.nodes[index].pendingSweeps?.isEmpty == true { pool.nodes[index].pendingSweeps = nil }
            case .startTaskRan(let run):
                pool.nodes[index].startTask = run
            }
        }
    }

    public func remove(_ name: String) throws(StoreError) {
        try Self.validateName(name)
        try withDatabase { database in
            try database.write { db in
                guard try Self.read(db, name) != nil else {
                    throw StoreError(description: name == "local" ? "the local pool is built in and cannot be removed" : "unknown pool '\(name)'")
                }
                try db.execute(sql: "DELETE FROM pool WHERE name = ?", arguments: [name])
            }
        }
    }

    /// Every pool: `local` (stored or built in) and the stored ones, by name.
    public func list() throws(StoreError) -> [Pool] {
        try withDatabase { database in
            try database.read { db in
                var pools = try Self.known(db).compactMap { try Self.read(db, $0) }
                if !pools.contains(where: { $0.name == "local" }) { pools.insert(Pool.local(), at: 0) }
                return pools
            }
        }
    }
}
