import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The bearer token every API request must carry: 32 random bytes as hex, in a file only
/// its owner can read (`<state>/api-token`, mode 0600), made on the server's first start.
public enum APIToken {
    public struct Problem: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public static func defaultPath(stateDirectory: String) -> String { "\(stateDirectory)/api-token" }

    /// Reads the token at `path`; refuses a file others can read or an empty one.
    public static func read(_ path: String) throws(Problem) -> String {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw Problem(description: "no API token at \(path): \(String(cString: strerror(errno)))") }
        guard info.st_uid == geteuid() else {
            throw Problem(description: "\(path) belongs to user \(info.st_uid), not to you (\(geteuid())): refusing a token someone else planted")
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw Problem(description: "\(path) is not a regular file") }
        guard info.st_mode & 0o077 == 0 else {
            throw Problem(description: "\(path) can be read by others (mode \(String(info.st_mode & 0o777, radix: 8))); make it 0600 (chmod 600 \(path))")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw Problem(description: "cannot read the API token at \(path)") }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= 16, token.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw Problem(description: "the API token in \(path) must be at least 16 printable characters")
        }
        return token
    }

    /// Makes a new token file at `path` (never replacing one); returns the token.
    public static func create(_ path: String) throws(Problem) -> String {
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Problem(description: "cannot create the API token at \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let line = token + "\n"
        let written = line.withCString { write(descriptor, $0, strlen($0)) }
        guard written == line.utf8.count else { throw Problem(description: "cannot write the API token at \(path)") }
        return token
    }

    /// Compares without an early exit, so timing tells nothing about the token.
    public static func matches(_ given: Substring, _ token: String) -> Bool {
        let a = Array(given.utf8), b = Array(token.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<min(a.count, b.count) { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
