/// A file (or a bucket prefix of files) put in place before a task starts: Azure Batch's
/// resourceFile. Exactly one of `httpUrl`, `storageContainerUrl` and
/// `autoStorageContainerName` is set.
public struct ResourceFile: Codable, Sendable, Equatable {
    /// One file by plain GET; `filePath` names it.
    public var httpUrl: String?
    /// Every object under a bucket URL (path-style `http(s)://endpoint/bucket[/prefix]` or
    /// `s3://bucket[/prefix]`), optionally only those under `blobPrefix`.
    public var storageContainerUrl: String?
    /// A bucket of the storage configured for Cohort.
    public var autoStorageContainerName: String?
    public var blobPrefix: String?
    /// Relative to the task's working directory: the file (httpUrl) or the directory the
    /// objects go to, keeping their names below the URL's prefix.
    public var filePath: String?
    /// Octal permissions (`0755`); Azure's default is 0770.
    public var fileMode: String?

    public init(httpUrl: String? = nil, storageContainerUrl: String? = nil, autoStorageContainerName: String? = nil, blobPrefix: String? = nil,
                filePath: String? = nil, fileMode: String? = nil) {
        self.httpUrl = httpUrl
        self.storageContainerUrl = storageContainerUrl
        self.autoStorageContainerName = autoStorageContainerName
        self.blobPrefix = blobPrefix
        self.filePath = filePath
        self.fileMode = fileMode
    }

    /// What the file comes from, for messages.
    public var source: String { httpUrl ?? storageContainerUrl ?? autoStorageContainerName.map { "bucket \($0)" } ?? "?" }
}

/// When a task's output files are uploaded.
public enum UploadCondition: String, Codable, Sendable, CaseIterable {
    case taskSuccess, taskFailure, taskCompletion

    public func applies(succeeded: Bool) -> Bool {
        switch self {
        case .taskCompletion: true
        case .taskSuccess: succeeded
        case .taskFailure: !succeeded
        }
    }
}

/// Files a task leaves, uploaded to a bucket once it ends: Azure Batch's outputFile.
public struct OutputFile: Codable, Sendable, Equatable {
    /// Relative to the task's working directory, with `*`, `?`, `[…]` within a name and `**`
    /// for any directories; a leading `../` is the task directory (where stdout.txt is).
    public var filePattern: String
    /// The bucket URL (`http(s)://endpoint/bucket[/prefix]` or `s3://bucket[/prefix]`).
    public var containerUrl: String
    /// The object name (a pattern without wildcards) or the prefix the matches go under.
    public var path: String?
    public var uploadCondition: UploadCondition

    public init(filePattern: String, containerUrl: String, path: String? = nil, uploadCondition: UploadCondition = .taskCompletion) {
        self.filePattern = filePattern
        self.containerUrl = containerUrl
        self.path = path
        self.uploadCondition = uploadCondition
    }
}
