import Crypto
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The few S3 operations Cohort needs (head, get into a file, put from a file, list a
/// prefix), path-style, signed with SigV4 when credentials are configured. A PUT is atomic
/// in S3: an object appears under its name whole or not at all.
public struct ObjectStore: Sendable {
    public var configuration: StorageConfiguration

    public init(configuration: StorageConfiguration) { self.configuration = configuration }

    public struct Object: Sendable, Equatable {
        public var key: String
        public var size: Int
        /// Without quotes. An MD5 of the content for objects put in one piece.
        public var etag: String
        /// The MD5 of the content, when the ETag is one (not a multipart upload's).
        public var md5: String? { etag.count == 32 && etag.allSatisfy(\.isHexDigit) ? etag : nil }
    }

    func url(_ location: ObjectLocation) -> (url: String, path: String) {
        let path = "/\(location.bucket)/\(SignatureV4.encode(location.key, keepSlash: true))"
        return (location.endpoint + path, path)
    }

    /// Host, date, payload hash (and token), plus Authorization when there are credentials.
    func headers(_ method: String, _ location: ObjectLocation, path: String, query: [(String, String)] = [],
                 payloadHash: String = SignatureV4.emptyPayloadHash, extra: [(String, String)] = []) -> [(String, String)] {
        let host = location.endpoint.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? ""
        var headers = [("host", host), ("x-amz-date", SignatureV4.timestamp(Date())), ("x-amz-content-sha256", payloadHash)] + extra
        if let token = configuration.sessionToken { headers.append(("x-amz-security-token", token)) }
        if let signer = configuration.signer {
            headers.append(("authorization", signer.authorization(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash)))
        }
        return headers
    }

    /// The object's size and ETag; nil when there is none of that name.
    public func head(_ location: ObjectLocation) throws -> Object? {
        let (url, path) = url(location)
        let response = try HTTPTransfer.send(.HEAD, url, headers: headers("HEAD", location, path: path))
        if response.status == 404 { return nil }
        guard response.status == 200 else {
            throw HTTPTransfer.Failure(method: "HEAD", url: url, status: response.status, reason: response.status == 403 ? "Forbidden (check the credentials)" : "")
        }
        return Object(key: location.key, size: response.header("content-length").flatMap(Int.init) ?? 0,
                      etag: (response.header("etag") ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
    }

    /// Downloads the object into `path`, checking its size and (for a one-piece object) MD5.
    public func download(_ location: ObjectLocation, to path: String, md5: String? = nil) throws {
        let (url, signedPath) = url(location)
        let store = self
        _ = try HTTPTransfer.download(url, headers: { store.headers("GET", location, path: signedPath) }, to: path, md5: md5)
    }

    /// Uploads the file at `path` as one object (up to 5 GiB, S3's limit for one PUT).
    public func upload(file path: String, to location: ObjectLocation) throws {
        let (url, signedPath) = url(location)
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw HTTPTransfer.Failure(method: "PUT", url: url, reason: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        let size = Int(info.st_size)
        guard size <= 5 << 30 else {
            throw HTTPTransfer.Failure(method: "PUT", url: url, reason: "\(path) is \(size) bytes; one upload takes at most 5 GiB (multipart uploads are not supported yet)")
        }
        let hash = try Self.sha256(ofFile: path)
        let store = self
        try HTTPTransfer.upload(url, from: path, size: size) {
            store.headers("PUT", location, path: signedPath, payloadHash: hash, extra: [("content-length", "\(size)")])
        }
    }

    /// Makes the bucket; one that is there already (and ours) is fine.
    public func createBucket(_ location: ObjectLocation) throws {
        let path = "/\(location.bucket)"
        let response = try HTTPTransfer.send(.PUT, location.endpoint + path, headers: headers("PUT", location, path: path))
        let text = String(decoding: response.body, as: UTF8.self)
        guard response.status == 200 || text.contains("BucketAlreadyOwnedByYou") else {
            throw HTTPTransfer.Failure(method: "PUT", url: location.endpoint + path, status: response.status,
                                       reason: HTTPTransfer.errorReason(text, .init(statusCode: response.status)))
        }
    }

    /// Every object whose key starts with `location.key`, in key order.
    public func list(_ location: ObjectLocation) throws -> [Object] {
        var objects: [Object] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", location.key)]
            if let token { query.append(("continuation-token", token)) }
            let encoded = query.map { "\(SignatureV4.encode($0.0))=\(SignatureV4.encode($0.1))" }.joined(separator: "&")
            let path = "/\(location.bucket)"
            let url = "\(location.endpoint)\(path)?\(encoded)"
            let response = try HTTPTransfer.send(.GET, url, headers: headers("GET", location, path: path, query: query))
            guard response.status == 200 else {
                let text = String(decoding: response.body, as: UTF8.self)
                throw HTTPTransfer.Failure(method: "GET", url: "\(location.endpoint)\(path)?list-type=2", status: response.status,
                                           reason: HTTPTransfer.errorReason(text, .init(statusCode: response.status)))
            }
            let page = ListingParser.parse(response.body)
            objects += page.objects
            token = page.truncated ? page.nextToken : nil
        } while token != nil
        return objects
    }

    static func sha256(ofFile path: String) throws -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(descriptor) }
        var hash = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(descriptor, buffer.baseAddress!, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            if count == 0 { break }
            hash.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
        return SignatureV4.hex(hash.finalize())
    }
}

/// ListObjectsV2's answer: keys, sizes, ETags, and where the next page starts.
final class ListingParser: NSObject, XMLParserDelegate {
    var objects: [ObjectStore.Object] = []
    var truncated = false
    var nextToken: String?
    private var text = ""
    private var current: (key: String, size: Int, etag: String)?

    static func parse(_ data: Data) -> ListingParser {
        let listing = ListingParser()
        let parser = XMLParser(data: data)
        parser.delegate = listing
        parser.parse()
        return listing
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        text = ""
        if name == "Contents" { current = ("", 0, "") }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        switch name {
        case "Key": current?.key = text
        case "Size": current?.size = Int(text) ?? 0
        case "ETag": current?.etag = text.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        case "Contents":
            if let current { objects.append(ObjectStore.Object(key: current.key, size: current.size, etag: current.etag)) }
            current = nil
        case "IsTruncated": truncated = text == "true"
        case "NextContinuationToken": nextToken = text
        default: break
        }
    }
}
