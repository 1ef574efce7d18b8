import Foundation

/// Pools kept as JSON files in the state directory (`~/.cohort/pools/NAME.json`, or under
/// `$COHORT_HOME`). The `local` pool always exists and needs no file.
public struct PoolStore: Sendable {
    public let directory: String

    public struct StoreError: Error, CustomStringConvertible {
        public var description: String
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
