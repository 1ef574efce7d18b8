import Foundation

/// `cohort run|submit --stage PATH`: local files travel with the job. They are uploaded to
/// the configured object store (`s3://BUCKET/staged/<job>-<random>/…`) and every task gets
/// them as a resource file, so a job submitted to a server elsewhere, or run on nodes that
/// do not share this folder, finds them in its working directory. Hidden files and folders
/// (`.git`, `.build`) are left out, as are links.
public enum LocalStaging {
    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    /// Uploads `paths` (files or folders; a folder's files keep their names below it, `.`
    /// its contents at the top) and returns the resource file that brings them back.
    public static func stage(_ paths: [String], jobId: String, bucket: String, storage: StorageConfiguration,
                             from directory: String = FileManager.default.currentDirectoryPath) throws(Problem) -> ResourceFile {
        guard let endpoint = storage.endpoint else {
            throw Problem(description: "--stage needs an object store: cohort storage set --endpoint URL … (or COHORT_S3_ENDPOINT)")
        }
        let base: ObjectLocation
        do {
            base = try ObjectLocation.parse("s3://\(bucket)/staged/\(jobId)-\(String(format: "%08x", UInt32.random(in: 0...UInt32.max)))", endpoint: endpoint)
        } catch {
            throw Problem(description: "--stage-bucket: \(error)")
        }
        var plan: [(path: String, name: String)] = []
        for path in paths {
            let absolute = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: directory, isDirectory: true)).standardizedFileURL.path
            var info = stat()
            guard lstat(absolute, &info) == 0 else { throw Problem(description: "--stage: \(path): \(String(cString: strerror(errno)))") }
            let top = path == "." || path == "./" ? "" : (absolute as NSString).lastPathComponent
            if info.st_mode & S_IFMT == S_IFREG {
                plan.append((absolute, top))
            } else if info.st_mode & S_IFMT == S_IFDIR {
                for relative in files(under: absolute) { plan.append(("\(absolute)/\(relative)", top.isEmpty ? relative : "\(top)/\(relative)")) }
            } else {
                throw Problem(description: "--stage: \(path) is neither a file nor a folder")
            }
        }
        guard !plan.isEmpty else { throw Problem(description: "--stage: no files to stage in \(paths.joined(separator: ", "))") }
        let store = ObjectStore(configuration: storage)
        do {
            try store.createBucket(base)
        } catch {
            throw Problem(description: "--stage: cannot create bucket \(bucket): \(error)")
        }
        let failures = concurrentMap(plan, width: 8) { item -> String? in
            do { try store.upload(file: item.path, to: base.appending(item.name)); return nil } catch { return "\(error)" }
        }
        if let first = failures.compactMap({ $0 }).first { throw Problem(description: "--stage: \(first)") }
        return ResourceFile(storageContainerUrl: base.description)
    }

    /// Regular files below `directory`, relative, hidden names and links left out: what the
    /// output files' `**/*` matches there.
    static func files(under directory: String) -> [String] {
        guard let everything = try? FilePattern("**/*") else { return [] }
        return everything.matches(taskDirectory: directory, workingDirectory: directory).map(\.relative)
    }
}
