import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The state directory (`~/.cohort` or `$COHORT_HOME`) holds the database, the API token and
/// every task's output: it is made 0700, and one that another user owns or may write to is
/// refused, since whoever can write there can plant a token or a `serve.json` that the CLI
/// would trust (and send the real token to).
public enum StateDirectory {
    public struct Unsafe: Error, CustomStringConvertible {
        public var description: String
    }

    /// Makes `path` (mode 0700) or checks the one there: a directory of the current user
    /// that others may not write to.
    public static func prepare(_ path: String) throws(Unsafe) {
        if mkdir(path, 0o700) != 0 && errno == ENOENT {
            do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
                throw Unsafe(description: "cannot create the state directory \(path): \(error.localizedDescription)")
            }
        }
        var info = stat()
        guard stat(path, &info) == 0 else { throw Unsafe(description: "cannot use the state directory \(path): \(String(cString: strerror(errno)))") }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw Unsafe(description: "the state directory \(path) is not a directory") }
        guard info.st_uid == geteuid() else {
            throw Unsafe(description: "the state directory \(path) belongs to user \(info.st_uid), not to you (\(geteuid())): refusing to use it (set COHORT_HOME to a directory of your own)")
        }
        // Not tightened here: COHORT_HOME may name a directory that other things share.
        guard info.st_mode & 0o002 == 0 else {
            throw Unsafe(description: "the state directory \(path) can be written by others (mode \(String(info.st_mode & 0o777, radix: 8))): "
                + "anyone could plant a token or a server address there; chmod o-w \(path), or set COHORT_HOME to a private directory")
        }
    }

    /// Checks a file before its content is trusted (the API token, `serve.json`): it must be
    /// the current user's and writable by no one else.
    public static func checkTrusted(_ path: String, what: String = "the state directory", directory: Bool = false) throws(Unsafe) {
        var info = stat()
        guard (directory ? stat(path, &info) : lstat(path, &info)) == 0 else {
            throw Unsafe(description: "cannot read \(what) \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == (directory ? S_IFDIR : S_IFREG) else {
            throw Unsafe(description: "\(what) \(path) is not a \(directory ? "directory" : "regular file"): refusing to trust it")
        }
        guard info.st_uid == geteuid() else {
            throw Unsafe(description: "\(what) \(path) belongs to user \(info.st_uid), not to you (\(geteuid())): refusing to trust it")
        }
        // A directory: others may not write to it (as `prepare` says); a file: nobody else.
        guard info.st_mode & (directory ? 0o002 : 0o022) == 0 else {
            throw Unsafe(description: "\(what) \(path) can be written by others (mode \(String(info.st_mode & 0o777, radix: 8))): refusing to trust it")
        }
    }
}
