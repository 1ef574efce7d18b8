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

    // Encoded in Azure's shape, as the job file has it: `cohort submit` sends the job as JSON
    // that the server reads with the job file's parser.
    enum Keys: String, CodingKey { case filePattern, destination, container, containerUrl, path, uploadOptions, uploadCondition }

    public init(from decoder: Decoder) throws {
        let root = try decoder.container(keyedBy: Keys.self)
        filePattern = try root.decode(String.self, forKey: .filePattern)
        let container = try root.nestedContainer(keyedBy: Keys.self, forKey: .destination).nestedContainer(keyedBy: Keys.self, forKey: .container)
        containerUrl = try container.decode(String.self, forKey: .containerUrl)
        path = try container.decodeIfPresent(String.self, forKey: .path)
        uploadCondition = try root.nestedContainer(keyedBy: Keys.self, forKey: .uploadOptions).decode(UploadCondition.self, forKey: .uploadCondition)
    }

    public func encode(to encoder: Encoder) throws {
        var root = encoder.container(keyedBy: Keys.self)
        try root.encode(filePattern, forKey: .filePattern)
        var destination = root.nestedContainer(keyedBy: Keys.self, forKey: .destination)
        var container = destination.nestedContainer(keyedBy: Keys.self, forKey: .container)
        try container.encode(containerUrl, forKey: .containerUrl)
        try container.encodeIfPresent(path, forKey: .path)
        var options = root.nestedContainer(keyedBy: Keys.self, forKey: .uploadOptions)
        try options.encode(uploadCondition, forKey: .uploadCondition)
    }
}

// MARK: - How a task's end acts on its job and its dependents (Azure's exitConditions)

/// What happens to the job when a task ends a given way (with the job's
/// `onTaskFailure: performExitOptionsJobAction`).
public enum JobAction: String, Codable, Sendable, CaseIterable {
    case none, disable, terminate
}

/// Whether the task's dependents may run after it ended a given way.
public enum DependencyAction: String, Codable, Sendable, CaseIterable {
    case satisfy, block
}

public struct ExitOptions: Codable, Sendable, Equatable {
    public var jobAction: JobAction?
    public var dependencyAction: DependencyAction?

    public init(jobAction: JobAction? = nil, dependencyAction: DependencyAction? = nil) {
        self.jobAction = jobAction
        self.dependencyAction = dependencyAction
    }
}

/// Azure's exitConditions: options per exit code, code range, pre-processing or upload
/// error, and a default for any other failure.
public struct ExitConditions: Codable, Sendable, Equatable {
    public struct CodeRange: Codable, Sendable, Equatable {
        public var start: Int32
        public var end: Int32
        public var options: ExitOptions
        public init(start: Int32, end: Int32, options: ExitOptions) {
            self.start = start
            self.end = end
            self.options = options
        }
    }

    /// Single codes as one-code ranges, in the file's order; the first match wins.
    public var codes: [CodeRange]
    public var ranges: [CodeRange]
    public var preProcessingError: ExitOptions?
    public var fileUploadError: ExitOptions?
    /// Any failure not covered above (Azure's `default`).
    public var otherwise: ExitOptions?

    public init(codes: [CodeRange] = [], ranges: [CodeRange] = [], preProcessingError: ExitOptions? = nil, fileUploadError: ExitOptions? = nil,
                otherwise: ExitOptions? = nil) {
        self.codes = codes
        self.ranges = ranges
        self.preProcessingError = preProcessingError
        self.fileUploadError = fileUploadError
        self.otherwise = otherwise
    }

    // Azure's shape (exitCodes, exitCodeRanges, preProcessingError, fileUploadError,
    // default), as the job file has it.
    enum Keys: String, CodingKey { case exitCodes, exitCodeRanges, preProcessingError, fileUploadError, otherwise = "default", code, start, end, exitOptions }

    public init(from decoder: Decoder) throws {
        let root = try decoder.container(keyedBy: Keys.self)
        func mappings(_ key: Keys, single: Bool) throws -> [CodeRange] {
            guard root.contains(key) else { return [] }
            var list = try root.nestedUnkeyedContainer(forKey: key)
            var result: [CodeRange] = []
            while !list.isAtEnd {
                let item = try list.nestedContainer(keyedBy: Keys.self)
                let options = try item.decode(ExitOptions.self, forKey: .exitOptions)
                if single {
                    let code = try item.decode(Int32.self, forKey: .code)
                    result.append(CodeRange(start: code, end: code, options: options))
                } else {
                    result.append(CodeRange(start: try item.decode(Int32.self, forKey: .start), end: try item.decode(Int32.self, forKey: .end), options: options))
                }
            }
            return result
        }
        codes = try mappings(.exitCodes, single: true)
        ranges = try mappings(.exitCodeRanges, single: false)
        preProcessingError = try root.decodeIfPresent(ExitOptions.self, forKey: .preProcessingError)
        fileUploadError = try root.decodeIfPresent(ExitOptions.self, forKey: .fileUploadError)
        otherwise = try root.decodeIfPresent(ExitOptions.self, forKey: .otherwise)
    }

    public func encode(to encoder: Encoder) throws {
        var root = encoder.container(keyedBy: Keys.self)
        if !codes.isEmpty {
            var list = root.nestedUnkeyedContainer(forKey: .exitCodes)
            for code in codes {
                var item = list.nestedContainer(keyedBy: Keys.self)
                try item.encode(code.start, forKey: .code)
                try item.encode(code.options, forKey: .exitOptions)
            }
        }
        if !ranges.isEmpty {
            var list = root.nestedUnkeyedContainer(forKey: .exitCodeRanges)
            for range in ranges {
                var item = list.nestedContainer(keyedBy: Keys.self)
                try item.encode(range.start, forKey: .start)
                try item.encode(range.end, forKey: .end)
                try item.encode(range.options, forKey: .exitOptions)
            }
        }
        try root.encodeIfPresent(preProcessingError, forKey: .preProcessingError)
        try root.encodeIfPresent(fileUploadError, forKey: .fileUploadError)
        try root.encodeIfPresent(otherwise, forKey: .otherwise)
    }

    /// The options written for this end, if any: an exact code first, then a range, then the
    /// error kind, then the default for a failure (a success matches only a listed code).
    public func options(exitCode: Int32?, failure: FailureCategory?) -> ExitOptions? {
        if failure == .preProcessingError { return preProcessingError ?? otherwise }
        if failure == .fileUploadError { return fileUploadError ?? otherwise }
        if let code = exitCode {
            if let match = codes.first(where: { $0.start == code }) ?? ranges.first(where: { ($0.start...$0.end).contains(code) }) { return match.options }
        }
        return failure == nil ? nil : otherwise
    }
}

/// What a job does when a task fails (Azure's onTaskFailure).
public enum TaskFailureAction: String, Codable, Sendable {
    /// Nothing: the job goes on (the default).
    case noAction = "noaction"
    /// The failed task's exit options' jobAction (terminate by default).
    case performExitOptionsJobAction = "performexitoptionsjobaction"
}

/// An application package a task needs (Azure's applicationPackageReference): extracted
/// on its nodes before it starts, its folder in `AZ_BATCH_APP_PACKAGE_<id>_<version>`.
public struct ApplicationPackageReference: Codable, Sendable, Equatable {
    public var applicationId: String
    /// Nil: the application's default version.
    public var version: String?

    public init(applicationId: String, version: String? = nil) {
        self.applicationId = applicationId
        self.version = version
    }
}
