import Crypto
import Foundation
import ZIPFoundation

/// Azure Batch's application packages on an owned cluster: zip archives kept by name and
/// version in the state directory (`apps/NAME/VERSION/package.zip`, `apps/NAME/default`),
/// extracted once into the shared work tree's cache before a task that names them starts.
/// An archive whose entries would land outside its folder ("zip slip": absolute names, `..`,
/// links leading out) is refused when added and again when extracted.
public struct ApplicationPackages: Sendable {
    /// `<state>/apps`.
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public struct Package: Codable, Sendable, Equatable {
        public var applicationId: String
        public var version: String
        public var isDefault: Bool
        public var bytes: Int
        public var archive: String
    }

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    /// Ids and versions as Azure allows them: letters, digits, '-', '_' and '.' (versions), at most 64.
    public static func checkName(_ text: String, _ what: String, dots: Bool) throws(Problem) {
        guard (1...64).contains(text.count), text.first != ".", text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || (dots && $0 == ".")) }) else {
            throw Problem(description: "'\(text.prefix(80))' is not a valid \(what) (1-64 letters, digits, '-', '_'\(dots ? " or '.'" : ""))")
        }
    }

    /// Keeps `file` as version `version` of `id`; the first version of an application (or
    /// one added with `makeDefault`) is its default.
    @discardableResult
    public func add(_ id: String, version: String, file: String, makeDefault: Bool = false) throws(Problem) -> Package {
        try Self.checkName(id, "application id", dots: false)
        try Self.checkName(version, "version", dots: true)
        _ = try Self.entries(of: file)
        let folder = "\(directory)/\(id)/\(version)"
        guard AttemptExecutor.makeDirectories(folder) else { throw Problem(description: "cannot create \(folder): \(String(cString: strerror(errno)))") }
        let temporary = "\(folder)/.package.zip.\(getpid())"
        do {
            try TaskFileTransfers.copy(file, to: temporary)
        } catch {
            throw Problem(description: error.description)
        }
        guard rename(temporary, "\(folder)/package.zip") == 0 else { throw Problem(description: "cannot keep \(file): \(String(cString: strerror(errno)))") }
        if makeDefault || defaultVersion(of: id) == nil {
            try? version.write(toFile: "\(directory)/\(id)/default", atomically: true, encoding: .utf8)
        }
        return try resolve(ApplicationPackageReference(applicationId: id, version: version))
    }

    public func list() -> [Package] {
        let ids = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        return ids.flatMap { id in
            let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/\(id)")) ?? []).filter { $0 != "default" }.sorted()
            return versions.compactMap { try? resolve(ApplicationPackageReference(applicationId: id, version: $0)) }
        }
    }

    /// Forgets one version, or the whole application.
    public func remove(_ id: String, version: String?) throws(Problem) {
        try Self.checkName(id, "application id", dots: false)
        if let version { try Self.checkName(version, "version", dots: true) }
        let path = version.map { "\(directory)/\(id)/\($0)" } ?? "\(directory)/\(id)"
        guard FileManager.default.fileExists(atPath: path) else {
            throw Problem(description: "no application \(id)\(version.map { " version \($0)" } ?? "")")
        }
        try? FileManager.default.removeItem(atPath: path)
        if let version, defaultVersion(of: id) == version { try? FileManager.default.removeItem(atPath: "\(directory)/\(id)/default") }
    }

    func defaultVersion(of id: String) -> String? {
        (try? String(contentsOfFile: "\(directory)/\(id)/default", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The package a reference names (its default version when it names none).
    public func resolve(_ reference: ApplicationPackageReference) throws(Problem) -> Package {
        try Self.checkName(reference.applicationId, "application id", dots: false)
        let id = reference.applicationId
        guard let version = reference.version ?? defaultVersion(of: id) else {
            throw Problem(description: "application \(id) has no default version (cohort app add \(id) VERSION FILE)")
        }
        try Self.checkName(version, "version", dots: true)
        let archive = "\(directory)/\(id)/\(version)/package.zip"
        let size = TaskFileTransfers.size(of: archive)
        guard size >= 0 else { throw Problem(description: "no application package \(id) version \(version) (cohort app list)") }
        return Package(applicationId: id, version: version, isDefault: defaultVersion(of: id) == version, bytes: size, archive: archive)
    }

    /// The entries of a zip archive, refused if it is not one or an entry would leave its folder.
    static func entries(of file: String) throws(Problem) -> Int {
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: file), accessMode: .read)
        } catch {
            throw Problem(description: "\(file) is not a zip archive (\(error))")
        }
        var count = 0
        for entry in archive {
            let parts = entry.path.split(separator: "/", omittingEmptySubsequences: true)
            guard !entry.path.hasPrefix("/"), !parts.contains(".."), !entry.path.contains("\\") else {
                throw Problem(description: "\(file): the entry '\(entry.path.prefix(200))' would be written outside the package's folder")
            }
            count += 1
        }
        guard count > 0 else { throw Problem(description: "\(file) is an empty archive") }
        return count
    }

    /// The package's folder in `cache` (`<work>/.cache/apps`), extracted there first if it
    /// is not: into a new folder renamed into place, one extraction at a time (a lock file).
    public func extracted(_ package: Package, cache: String) throws(Problem) -> String {
        let digest = (try? ObjectStore.sha256(ofFile: package.archive)).map { String($0.prefix(16)) } ?? "unknown"
        let folder = "\(cache)/\(package.applicationId)/\(package.version)-\(digest)"
        if FileManager.default.fileExists(atPath: folder) { return folder }
        guard AttemptExecutor.makeDirectories("\(cache)/\(package.applicationId)") else { throw Problem(description: "cannot create \(cache)") }
        let lock = open("\(folder).lock", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        if lock >= 0 { flock(lock, LOCK_EX) }
        defer { if lock >= 0 { flock(lock, LOCK_UN); close(lock) } }
        if FileManager.default.fileExists(atPath: folder) { return folder }
        _ = try Self.entries(of: package.archive)
        let partial = "\(folder).part-\(getpid())"
        try? FileManager.default.removeItem(atPath: partial)
        do {
            let archive = try Archive(url: URL(fileURLWithPath: package.archive), accessMode: .read)
            let root = URL(fileURLWithPath: partial, isDirectory: true)
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            for entry in archive {
                // Links leading out of the folder are refused by the extraction itself.
                _ = try archive.extract(entry, to: root.appendingPathComponent(entry.path), allowUncontainedSymlinks: false)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw Problem(description: "cannot extract application \(package.applicationId) version \(package.version): \(error)")
        }
        guard rename(partial, folder) == 0 else { throw Problem(description: "cannot put \(folder) in place: \(String(cString: strerror(errno)))") }
        return folder
    }

    /// Azure's variables on Linux: `AZ_BATCH_APP_PACKAGE_<id>_<version>` (anything but a
    /// letter or digit made '_'; as written and lowercased), and without the version for the
    /// default one.
    public static func variables(_ package: Package, folder: String) -> [String: String] {
        func name(_ text: String) -> String { String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" }) }
        var variables: [String: String] = [:]
        for form in [name(package.applicationId), name(package.applicationId).lowercased()] {
            variables["AZ_BATCH_APP_PACKAGE_\(form)_\(name(package.version).lowercased())"] = folder
            variables["AZ_BATCH_APP_PACKAGE_\(form)_\(name(package.version))"] = folder
            if package.isDefault { variables["AZ_BATCH_APP_PACKAGE_\(form)"] = folder }
        }
        return variables
    }
}
