import Foundation

/// Where Cohort's object storage is and how to sign for it: an S3-compatible endpoint, a
/// region and credentials. From the environment, as AWS's tools read it
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` or
/// `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`), with
/// `COHORT_S3_ENDPOINT` first for the endpoint. Without credentials requests go unsigned.
public struct StorageConfiguration: Sendable, Equatable, Codable {
    /// `http(s)://host[:port]`: where `s3://` URLs and `autoStorageContainerName` point.
    public var endpoint: String?
    public var region: String
    public var accessKeyId: String?
    public var secretAccessKey: String?
    public var sessionToken: String?

    public init(endpoint: String? = nil, region: String = "us-east-1", accessKeyId: String? = nil, secretAccessKey: String? = nil,
                sessionToken: String? = nil) {
        self.endpoint = endpoint
        self.region = region
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> StorageConfiguration {
        func value(_ names: String...) -> String? { names.lazy.compactMap { environment[$0] }.first { !$0.isEmpty } }
        return StorageConfiguration(endpoint: value("COHORT_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
                                    region: value("AWS_REGION", "AWS_DEFAULT_REGION") ?? "us-east-1",
                                    accessKeyId: value("AWS_ACCESS_KEY_ID"), secretAccessKey: value("AWS_SECRET_ACCESS_KEY"),
                                    sessionToken: value("AWS_SESSION_TOKEN"))
    }

    /// `storage.json` in the state directory (written by `cohort storage set`, owner-only:
    /// it may hold the secret), with the environment's values over it, as AWS's tools do.
    public static func configured(stateDirectory: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> StorageConfiguration {
        let stored = stored(stateDirectory: stateDirectory) ?? StorageConfiguration()
        let given = fromEnvironment(environment)
        let regionGiven = environment["AWS_REGION"].map { !$0.isEmpty } == true || environment["AWS_DEFAULT_REGION"].map { !$0.isEmpty } == true
        return StorageConfiguration(endpoint: given.endpoint ?? stored.endpoint, region: regionGiven ? given.region : stored.region,
                                    accessKeyId: given.accessKeyId ?? stored.accessKeyId,
                                    secretAccessKey: given.accessKeyId != nil ? given.secretAccessKey : stored.secretAccessKey,
                                    sessionToken: given.accessKeyId != nil ? given.sessionToken : stored.sessionToken)
    }

    public static func file(stateDirectory: String) -> String { "\(stateDirectory)/storage.json" }

    public static func stored(stateDirectory: String) -> StorageConfiguration? {
        guard let data = FileManager.default.contents(atPath: file(stateDirectory: stateDirectory)) else { return nil }
        return try? JSONDecoder().decode(StorageConfiguration.self, from: data)
    }

    /// Writes `storage.json` with mode 0600 (created so, then renamed into place).
    public func store(stateDirectory: String) throws {
        let path = Self.file(stateDirectory: stateDirectory)
        let temporary = "\(path).\(getpid())"
        let data = try JSONEncoder().encode(self)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        guard written == data.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }

    /// The signer, when credentials are given.
    var signer: SignatureV4? {
        guard let accessKeyId, let secretAccessKey else { return nil }
        return SignatureV4(accessKeyId: accessKeyId, secretAccessKey: secretAccessKey, region: region)
    }
}

/// A bucket and a key (or key prefix) on an S3-compatible endpoint, from a container URL:
/// path-style `http(s)://endpoint/bucket[/prefix]`, or `s3://bucket[/prefix]` on the
/// configured endpoint.
public struct ObjectLocation: Sendable, Equatable, CustomStringConvertible {
    /// `http(s)://host[:port]`, no trailing slash.
    public var endpoint: String
    public var bucket: String
    /// The key or prefix, without a leading slash; may be empty.
    public var key: String

    public init(endpoint: String, bucket: String, key: String) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.key = key
    }

    public var description: String { "\(endpoint)/\(bucket)\(key.isEmpty ? "" : "/\(key)")" }

    /// The same place with `name` appended as a path below it.
    public func appending(_ name: String) -> ObjectLocation {
        guard !name.isEmpty else { return self }
        var copy = self
        copy.key = key.isEmpty ? name : (key.hasSuffix("/") ? key + name : "\(key)/\(name)")
        return copy
    }

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses a container URL; `endpoint` is the configured one, for `s3://`.
    public static func parse(_ text: String, endpoint: String?) throws(Problem) -> ObjectLocation {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw Problem(description: "'\(text)' is not a URL")
        }
        switch scheme {
        case "s3":
            guard let bucket = components.host, !bucket.isEmpty else { throw Problem(description: "'\(text)' names no bucket (s3://BUCKET/PREFIX)") }
            guard let endpoint else {
                throw Problem(description: "'\(text)' needs a storage endpoint: set COHORT_S3_ENDPOINT (or AWS_ENDPOINT_URL) for the server and cohort run")
            }
            try checkBucket(bucket, in: text)
            return ObjectLocation(endpoint: try normalizedEndpoint(endpoint), bucket: bucket, key: String(components.path.drop { $0 == "/" }))
        case "http", "https":
            guard let host = components.host, !host.isEmpty else { throw Problem(description: "'\(text)' has no host") }
            guard components.query == nil else {
                throw Problem(description: "'\(text)' has a query: Cohort signs requests itself (no SAS tokens); give the bucket URL alone")
            }
            let parts = components.path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: true)
            guard let bucket = parts.first.map(String.init) else {
                throw Problem(description: "'\(text)' names no bucket (path-style URL: \(scheme)://HOST[:PORT]/BUCKET[/PREFIX])")
            }
            try checkBucket(bucket, in: text)
            let port = components.port.map { ":\($0)" } ?? ""
            return ObjectLocation(endpoint: "\(scheme)://\(host)\(port)", bucket: bucket, key: parts.count > 1 ? String(parts[1]) : "")
        default:
            throw Problem(description: "'\(text)': unknown scheme '\(scheme)' (expected http, https or s3)")
        }
    }

    static func normalizedEndpoint(_ endpoint: String) throws(Problem) -> String {
        guard let components = URLComponents(string: endpoint), let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty
        else { throw Problem(description: "the storage endpoint '\(endpoint)' is not an http(s) URL") }
        return "\(scheme)://\(host)\(components.port.map { ":\($0)" } ?? "")"
    }

    /// S3's bucket names: 3-63 lowercase letters, digits, '.' and '-'.
    static func checkBucket(_ bucket: String, in text: String) throws(Problem) {
        guard (3...63).contains(bucket.count),
              bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") })
        else { throw Problem(description: "'\(text)': '\(bucket)' is not a bucket name (3-63 lowercase letters, digits, '.' or '-')") }
    }
}
