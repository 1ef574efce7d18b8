import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An output file pattern with Azure Batch's rules: relative to the task's working
/// directory, `*`, `?` and `[…]` within one name (names starting with '.' only when the
/// pattern's does), `**` for any number of directories, and one leading `../` for the task
/// directory. It never reaches outside the task directory.
public struct FilePattern: Sendable, Equatable {
    /// The pattern's names; a leading `..` is taken off into `fromTaskDirectory`.
    public let segments: [String]
    public let fromTaskDirectory: Bool

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    public init(_ text: String) throws(Problem) {
        guard !text.isEmpty else { throw Problem(description: "the file pattern is empty") }
        guard !text.hasPrefix("/") else { throw Problem(description: "'\(text)' is absolute; patterns are relative to the task's working directory") }
        var parts = text.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
        fromTaskDirectory = parts.first == ".."
        if fromTaskDirectory { parts.removeFirst() }
        guard !parts.contains("..") else {
            throw Problem(description: "'\(text)' reaches outside the task directory (only one leading ../, for the task directory, is allowed)")
        }
        guard !parts.isEmpty else { throw Problem(description: "'\(text)' names a directory, not files") }
        segments = parts
    }

    public var hasWildcards: Bool { segments.contains { Self.isWildcard($0) } }

    static func isWildcard(_ segment: String) -> Bool { segment.contains { "*?[".contains($0) } }

    /// The regular files it matches, as (path, name relative to the pattern's fixed
    /// directory), sorted. `taskDirectory` holds `workingDirectory` (or is it).
    public func matches(taskDirectory: String, workingDirectory: String) -> [(path: String, relative: String)] {
        let root = fromTaskDirectory ? taskDirectory : workingDirectory
        let fixedCount = segments.firstIndex { Self.isWildcard($0) } ?? segments.count
        let fixed = ([root] + segments.prefix(fixedCount)).joined(separator: "/")
        if fixedCount == segments.count {
            var info = stat()
            guard lstat(fixed, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return [] }
            return [(fixed, segments.last!)]
        }
        var found: [(String, String)] = []
        walk(fixed, relative: [], rest: Array(segments[fixedCount...]), into: &found)
        return found.sorted { $0.1 < $1.1 }
    }

    /// Matches `rest` against the tree at `directory`; symbolic links are not followed.
    private func walk(_ directory: String, relative: [String], rest: [String], into found: inout [(String, String)]) {
        guard let first = rest.first else { return }
        if first == "**" {
            // Zero directories here, or one more and still `**`.
            walk(directory, relative: relative, rest: Array(rest.dropFirst()), into: &found)
            for (name, isDirectory) in entries(directory) where isDirectory && !name.hasPrefix(".") {
                walk("\(directory)/\(name)", relative: relative + [name], rest: rest, into: &found)
            }
            return
        }
        for (name, isDirectory) in entries(directory) where fnmatch(first, name, FNM_PERIOD) == 0 {
            if rest.count == 1 {
                if !isDirectory, isRegular("\(directory)/\(name)") { found.append(("\(directory)/\(name)", (relative + [name]).joined(separator: "/"))) }
            } else if isDirectory {
                walk("\(directory)/\(name)", relative: relative + [name], rest: Array(rest.dropFirst()), into: &found)
            }
        }
    }

    private func entries(_ directory: String) -> [(String, Bool)] {
        guard let stream = opendir(directory) else { return [] }
        defer { closedir(stream) }
        var result: [(String, Bool)] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." { continue }
            var info = stat()
            guard lstat("\(directory)/\(name)", &info) == 0 else { continue }
            let type = info.st_mode & S_IFMT
            if type == S_IFDIR { result.append((name, true)) } else if type == S_IFREG { result.append((name, false)) }
        }
        return result
    }

    private func isRegular(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    }
}
