import CSpawn
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Gets a task's resource files into place and its output files out: the work of Azure
/// Batch's node agent around a task. Objects of a bucket are kept in a cache keyed by
/// their address, ETag and size (the work tree is shared by the nodes, so one download
/// serves every node and every later task), then copied into place; a plain URL is
/// fetched each time.
public struct TaskFileTransfers: Sendable {
    public var storage: StorageConfiguration
    /// Where downloaded objects are kept: `<work>/.cache/objects`.
    public var cacheDirectory: String
    /// Transfers at once, per task.
    public var width = 8

    public init(storage: StorageConfiguration, cacheDirectory: String) {
        self.storage = storage
        self.cacheDirectory = cacheDirectory
    }

    /// A transfer that failed: what (the URL, the file) and why (the HTTP status or error).
    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    // MARK: - Resource files

    /// Puts every file in place under `directory`; the first failure is thrown.
    public func stage(_ files: [ResourceFile], into directory: String) throws(Problem) {
        var plan: [(source: Source, destination: String, mode: mode_t)] = []
        for file in files {
            let mode = file.fileMode.flatMap { mode_t($0, radix: 8) } ?? 0o770
            if let url = file.httpUrl {
                guard let name = file.filePath else { throw Problem(description: "\(url): an httpUrl resource file needs a filePath") }
                plan.append((.url(url), try Self.inside(directory, name), mode))
                continue
            }
            let location = try container(file)
            let base = file.filePath.map { $0 } ?? ""
            let objects: [ObjectStore.Object]
            do {
                objects = try ObjectStore(configuration: storage).list(location.appending(file.blobPrefix ?? ""))
            } catch {
                throw Problem(description: "cannot list \(location): \(error)")
            }
            let prefix = location.key.isEmpty || location.key.hasSuffix("/") ? location.key : location.key + "/"
            for object in objects where !object.key.hasSuffix("/") {
                let name = object.key.hasPrefix(prefix) ? String(object.key.dropFirst(prefix.count)) : object.key
                let target = try Self.inside(directory, base.isEmpty ? name : "\(base)/\(name)")
                var place = location
                place.key = object.key
                plan.append((.object(place, object), target, mode))
            }
        }
        let results = concurrentMap(plan, width: width) { item -> Problem? in
            do {
                try self.fetch(item.source, to: item.destination, mode: item.mode)
                return nil
            } catch {
                return (error as Any as? Problem) ?? Problem(description: "\(error)")
            }
        }
        if let problem = results.compactMap({ $0 }).first { throw problem }
    }

    enum Source: Sendable {
        case url(String)
        case object(ObjectLocation, ObjectStore.Object)
    }

    func container(_ file: ResourceFile) throws(Problem) -> ObjectLocation {
        do {
            if let url = file.storageContainerUrl { return try ObjectLocation.parse(url, endpoint: storage.endpoint) }
            if let name = file.autoStorageContainerName {
                guard let endpoint = storage.endpoint else {
                    throw Problem(description: "autoStorageContainerName '\(name)' needs a storage endpoint: set COHORT_S3_ENDPOINT (or AWS_ENDPOINT_URL) for the server and cohort run")
                }
                return try ObjectLocation.parse("\(endpoint)/\(name)", endpoint: endpoint)
            }
        } catch let problem as ObjectLocation.Problem {
            throw Problem(description: problem.description)
        } catch let problem as Problem {
            throw problem
        } catch {
            throw Problem(description: "\(error)")
        }
        throw Problem(description: "a resource file needs httpUrl, storageContainerUrl or autoStorageContainerName")
    }

    /// `directory/name`, refused when `name` would leave `directory`.
    static func inside(_ directory: String, _ name: String) throws(Problem) -> String {
        let parts = name.split(separator: "/", omittingEmptySubsequences: true)
        guard !name.hasPrefix("/"), !parts.isEmpty, !parts.contains("..") else {
            throw Problem(description: "'\(name)' is not a path inside the task's directory")
        }
        return "\(directory)/\(parts.joined(separator: "/"))"
    }

    func fetch(_ source: Source, to destination: String, mode: mode_t) throws(Problem) {
        let folder = (destination as NSString).deletingLastPathComponent
        guard AttemptExecutor.makeDirectories(folder) else { throw Problem(description: "cannot create \(folder): \(String(cString: strerror(errno)))") }
        let temporary = "\(destination).cohort-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(temporary) }
        do {
            switch source {
            case .url(let url):
                _ = try HTTPTransfer.download(url, headers: { [] }, to: temporary)
            case .object(let location, let object):
                let cached = try cachedCopy(of: location, object)
                try Self.copy(cached, to: temporary)
            }
        } catch let problem as Problem {
            throw problem
        } catch {
            throw Problem(description: "\(error)")
        }
        chmod(temporary, mode)
        guard rename(temporary, destination) == 0 else {
            throw Problem(description: "cannot put \(destination) in place: \(String(cString: strerror(errno)))")
        }
    }

    /// The cached copy of the object, downloaded first if it is not there; one download at a
    /// time per object (a lock file), so tasks starting together share it.
    func cachedCopy(of location: ObjectLocation, _ object: ObjectStore.Object) throws -> String {
        let key = SignatureV4.hex(SHA256.hash(data: Data("\(location)\n\(object.etag)\n\(object.size)".utf8)))
        let path = "\(cacheDirectory)/\(key)"
        if Self.size(of: path) == object.size { return path }
        guard AttemptExecutor.makeDirectories(cacheDirectory) else { throw Problem(description: "cannot create \(cacheDirectory)") }
        let lock = open("\(path).lock", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        if lock >= 0 { flock(lock, LOCK_EX) }
        defer { if lock >= 0 { flock(lock, LOCK_UN); close(lock) } }
        if Self.size(of: path) == object.size { return path }
        let partial = "\(path).part-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(partial) }
        try ObjectStore(configuration: storage).download(location, to: partial, md5: object.md5)
        guard Self.size(of: partial) == object.size else {
            throw Problem(description: "GET \(location): \(Self.size(of: partial)) bytes arrived, the listing said \(object.size)")
        }
        guard rename(partial, path) == 0 else { throw Problem(description: "cannot keep \(location) in \(cacheDirectory): \(String(cString: strerror(errno)))") }
        return path
    }

    static func size(of path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : -1
    }

    /// A copy made by the kernel (copy_file_range: no bytes through user space, a reflink
    /// where the filesystem has them).
    static func copy(_ source: String, to destination: String) throws(Problem) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw Problem(description: "cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw Problem(description: "cannot write \(destination): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        let failed = cohort_copy_file(input, output)
        guard failed == 0 else { throw Problem(description: "cannot copy \(source) to \(destination): \(String(cString: strerror(failed)))") }
    }

    // MARK: - Output files

    /// Uploads what each output file's pattern matches, where its condition holds; returns
    /// the objects written. The first failure is thrown once all have been tried.
    @discardableResult
    public func upload(_ files: [OutputFile], taskDirectory: String, workingDirectory: String, succeeded: Bool) throws(Problem) -> [String] {
        var plan: [(path: String, location: ObjectLocation)] = []
        var problems: [String] = []
        for file in files where file.uploadCondition.applies(succeeded: succeeded) {
            do {
                let pattern = try FilePattern(file.filePattern)
                let base = try ObjectLocation.parse(file.containerUrl, endpoint: storage.endpoint)
                let matches = pattern.matches(taskDirectory: taskDirectory, workingDirectory: workingDirectory)
                if matches.isEmpty && !pattern.hasWildcards {
                    problems.append("no file \(file.filePattern) to upload to \(base)")
                }
                for match in matches {
                    let name = pattern.hasWildcards ? [file.path, match.relative].compactMap { $0 }.joined(separator: "/") : (file.path ?? match.relative)
                    plan.append((match.path, base.appending(name)))
                }
            } catch {
                problems.append("\(error)")
            }
        }
        let store = ObjectStore(configuration: storage)
        let results = concurrentMap(plan, width: width) { item -> String? in
            do {
                try store.upload(file: item.path, to: item.location)
                return nil
            } catch {
                return "\(error)"
            }
        }
        problems += results.compactMap { $0 }
        if let first = problems.first {
            throw Problem(description: problems.count == 1 ? first : "\(first) (and \(problems.count - 1) more)")
        }
        return plan.map { $0.location.description }
    }
}
