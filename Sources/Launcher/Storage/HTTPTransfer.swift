import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// Whole-file HTTP transfers for the executor's threads (which block): a GET streamed into
/// a file with its size and MD5 checked, a PUT streamed from a file, small requests. One
/// client for the process; retries with backoff on what may pass (connection errors, 5xx,
/// 408, 429), never on other answers.
public enum HTTPTransfer {
    /// A failed request: the method, the URL (without its query) and the HTTP status or the
    /// connection error.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var method: String
        public var url: String
        public var status: Int?
        public var reason: String
        public var description: String {
            "\(method) \(url): " + (status.map { "HTTP \($0)\(reason.isEmpty ? "" : " \(reason)")" } ?? reason)
        }
        var retryable: Bool { status.map { $0 >= 500 || $0 == 408 || $0 == 429 } ?? true }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: Data
        public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    /// Tries before giving up, and the first pause (doubled each time). A try that cannot
    /// connect costs the connect timeout (the client keeps trying within it).
    static let tries = 3
    static let firstPause = 0.5

    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(3), read: .seconds(120)))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 16)
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// A small request (a listing, a HEAD, an error body): the whole answer, any status.
    static func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)], body: Data? = nil, limit: Int = 64 << 20) throws -> Response {
        try retrying(method.rawValue, url) {
            var request = HTTPClientRequest(url: url)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
            let response = try await client.execute(request, timeout: .seconds(300))
            let bytes = method == .HEAD ? ByteBuffer() : try await response.body.collect(upTo: limit)
            return Response(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: Data(bytes.readableBytesView))
        }
    }

    /// GETs `url` into `path` (created or truncated). Returns the answer's headers; a
    /// status other than 200 is a failure (with the server's error text), as is a body
    /// shorter or longer than its Content-Length or one whose MD5 differs from `md5`.
    static func download(_ url: String, headers: @escaping @Sendable () -> [(String, String)], to path: String, md5 expected: String? = nil) throws -> Response {
        try retrying("GET", url) {
            var request = HTTPClientRequest(url: url)
            for (name, value) in headers() { request.headers.add(name: name, value: value) }
            let response = try await client.execute(request, timeout: .hours(24))
            guard response.status == .ok else {
                let text = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
                throw Failure(method: "GET", url: redacted(url), status: Int(response.status.code), reason: errorReason(text, response.status))
            }
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw Failure(method: "GET", url: redacted(url), reason: "cannot write \(path): \(String(cString: strerror(errno)))") }
            defer { close(descriptor) }
            var md5 = expected == nil ? nil : Insecure.MD5()
            var received = 0
            for try await chunk in response.body {
                try chunk.withUnsafeReadableBytes { bytes in
                    md5?.update(bufferPointer: bytes)
                    var offset = 0
                    while offset < bytes.count {
                        let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                        if written < 0 {
                            if errno == EINTR { continue }
                            throw Failure(method: "GET", url: redacted(url), reason: "cannot write \(path): \(String(cString: strerror(errno)))")
                        }
                        offset += written
                    }
                }
                received += chunk.readableBytes
            }
            if let length = response.headers.first(name: "content-length").flatMap(Int.init), length != received {
                throw Failure(method: "GET", url: redacted(url), reason: "the body had \(received) bytes of the \(length) announced")
            }
            if let expected, let md5 {
                let actual = SignatureV4.hex(md5.finalize())
                guard actual == expected.lowercased() else {
                    throw Failure(method: "GET", url: redacted(url), reason: "checksum mismatch: MD5 \(actual), the server's is \(expected)")
                }
            }
            return Response(status: 200, headers: response.headers.map { ($0.name, $0.value) }, body: Data())
        }
    }

    /// PUTs the file at `path` (streamed, its length announced). `headers` is called for
    /// every try (a signature carries the time).
    static func upload(_ url: String, from path: String, size: Int, headers: @escaping @Sendable () -> [(String, String)]) throws {
        _ = try retrying("PUT", url) {
            var request = HTTPClientRequest(url: url)
            request.method = .PUT
            for (name, value) in headers() { request.headers.add(name: name, value: value) }
            request.body = .stream(FileChunks(path: path), length: .known(Int64(size)))
            let response = try await client.execute(request, timeout: .hours(24))
            let text = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
            guard response.status == .ok || response.status == .created || response.status == .noContent else {
                throw Failure(method: "PUT", url: redacted(url), status: Int(response.status.code), reason: errorReason(text, response.status))
            }
            return Response(status: Int(response.status.code), headers: [], body: Data())
        }
    }

    /// Runs `operation` up to `tries` times while its failures may pass.
    static func retrying<T: Sendable>(_ method: String, _ url: String, _ operation: @escaping @Sendable () async throws -> T) throws -> T {
        var pause = firstPause
        for attempt in 1...tries {
            do {
                return try Blocking.wait(operation)
            } catch let failure as Failure {
                if !failure.retryable || attempt == tries { throw failure }
            } catch {
                if attempt == tries { throw Failure(method: method, url: redacted(url), reason: "\(error)") }
            }
            Thread.sleep(forTimeInterval: pause)
            pause *= 2
        }
        fatalError("unreachable")
    }

    /// The URL without its query (which may hold a token).
    static func redacted(_ url: String) -> String { url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url }

    /// S3's `<Code>` and `<Message>` when the body has them, else the status's phrase.
    static func errorReason(_ body: String, _ status: HTTPResponseStatus) -> String {
        func element(_ name: String) -> String? {
            guard let start = body.range(of: "<\(name)>"), let end = body.range(of: "</\(name)>", range: start.upperBound..<body.endIndex) else { return nil }
            return String(body[start.upperBound..<end.lowerBound])
        }
        if let code = element("Code") { return [code, element("Message")].compactMap { $0 }.joined(separator: ": ") }
        return status.reasonPhrase
    }
}

/// A file read in 1 MiB chunks, as an upload's body; closed when the body is dropped (a
/// failed try too).
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String

    final class Reader: @unchecked Sendable {
        let descriptor: Int32
        var offset: off_t = 0
        init(path: String) { descriptor = open(path, O_RDONLY | O_CLOEXEC) }
        deinit { if descriptor >= 0 { close(descriptor) } }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let reader: Reader
        mutating func next() async throws -> ByteBuffer? {
            let reader = self.reader
            guard reader.descriptor >= 0 else { throw POSIXError(.ENOENT) }
            var buffer = ByteBuffer()
            let count = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { bytes in
                while true {
                    let read = pread(reader.descriptor, bytes.baseAddress!, 1 << 20, reader.offset)
                    if read < 0 && errno == EINTR { continue }
                    if read < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                    return read
                }
            }
            if count == 0 { return nil }
            reader.offset += off_t(count)
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: Reader(path: path)) }
}

/// Runs async work to its end from a thread that may block (the executor's, never one of
/// Swift's cooperative pool).
enum Blocking {
    final class Box<T>: @unchecked Sendable { var result: Result<T, Error>? }

    static func wait<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) throws -> T {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { box.result = .success(try await operation()) } catch { box.result = .failure(error) }
            done.signal()
        }
        done.wait()
        return try box.result!.get()
    }
}
