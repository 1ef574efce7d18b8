import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Pools kept as JSON files in the state directory (`~/.cohort/pools/NAME.json`, or under
/// `$COHORT_HOME`). The `local` pool always exists and needs no file.
public struct PoolStore: Sendable {
    public let directory: String

    public struct StoreError: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public init(stateDirectory: String) {
        directory = "\(stateDirectory)/pools"
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

    func path(_ name: String) -> String { "\(directory)/\(name).json" }

    public func load(_ name: String) throws(StoreError) -> Pool {
        try Self.validateName(name)
        guard let data = FileManager.default.contents(atPath: path(name)) else {
            if name == "local" { return Pool.local() }
            let known = (try? list().map(\.name)) ?? ["local"]
            throw StoreError(description: "unknown pool '\(name)' (known: \(known.joined(separator: ", ")))")
        }
        do {
            return try JSONDecoder().decode(Pool.self, from: data)
        } catch {
            throw StoreError(description: "\(path(name)): not a pool file: \(error)")
        }
    }

    public func save(_ pool: Pool) throws(StoreError) {
        try Self.validateName(pool.name)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            // Written beside and renamed, so a crash never leaves half a file.
            try encoder.encode(pool).write(to: URL(fileURLWithPath: path(pool.name)), options: .atomic)
        } catch {
            throw StoreError(description: "cannot save pool \(pool.name) in \(directory): \(error.localizedDescription)")
        }
    }

    /// Whether `name` has a file (the built-in local pool has none until changed).
    public func isStored(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }

    /// Reads, changes and writes one pool under an exclusive lock, so that a running job
    /// and `cohort node drain` in another process never lose each other's changes.
    public func update(_ name: String, _ change: (inout Pool) throws -> Void) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let lockPath = "\(directory)/.lock"
        let descriptor = open(lockPath, O_CREAT | O_RDWR, 0o600)
        guard descriptor >= 0 else { throw StoreError(description: "cannot open \(lockPath)") }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw StoreError(description: "cannot lock \(lockPath)") }
        defer { flock(descriptor, LOCK_UN) }
        var pool = try load(name)
        try change(&pool)
        try save(pool)
    }

    public func remove(_ name: String) throws(StoreError) {
        try Self.validateName(name)
        guard FileManager.default.fileExists(atPath: path(name)) else {
            throw StoreError(description: name == "local" ? "the local pool is built in and cannot be removed" : "unknown pool '\(name)'")
        }
        do { try FileManager.default.removeItem(atPath: path(name)) } catch {
            throw StoreError(description: "cannot remove pool \(name): \(error.localizedDescription)")
        }
    }

    /// Every pool: `local` (stored or built in) and the stored ones, by name.
    public func list() throws(StoreError) -> [Pool] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var pools: [Pool] = []
        for file in files.sorted() where file.hasSuffix(".json") {
            pools.append(try load(String(file.dropLast(5))))
        }
        if !pools.contains(where: { $0.name == "local" }) { pools.insert(Pool.local(), at: 0) }
        return pools
    }
}
