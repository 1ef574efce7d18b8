import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What running tasks write, as `srun` shows it: each complete line as it comes, stdout to
/// stdout and stderr to stderr, labelled with its task (`pi[3]: …`) when the job has more
/// than one. It follows the attempts' `stdout.txt`/`stderr.txt` (local, or on a filesystem
/// the nodes share with this machine) on one serial queue: no lock, and a slow terminal
/// never slows the run.
final class LiveOutput: @unchecked Sendable {  // its state is touched on `queue` only
    private let queue = DispatchQueue(label: "cohort.live-output")
    private let labelled: Bool
    /// Clears the progress line on the terminal before a line is printed.
    private let clearsProgress: Bool
    private var followed: [String: Followed] = [:]
    private var timer: DispatchSourceTimer?

    private struct Followed {
        var label: String
        var offset: UInt64 = 0
        var partial = Data()
        var toStandardError: Bool
    }

    init(labelled: Bool, clearsProgress: Bool) {
        self.labelled = labelled
        self.clearsProgress = clearsProgress
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + 0.1, repeating: 0.1)
        timer.setEventHandler { [unowned self] in self.readAll() }
        timer.resume()
        self.timer = timer
    }

    /// An attempt started: follow its output files.
    func started(label: String, directory: String) {
        queue.async { [self] in
            for (name, toError) in [("stdout.txt", false), ("stderr.txt", true)] where followed["\(directory)/\(name)"] == nil {
                followed["\(directory)/\(name)"] = Followed(label: label, toStandardError: toError)
            }
        }
    }

    /// An attempt ended: print the rest of its output, its last line even without a newline.
    func ended(directory: String) {
        queue.async { [self] in
            for name in ["stdout.txt", "stderr.txt"] {
                let path = "\(directory)/\(name)"
                guard followed[path] != nil else { continue }
                read(path, final: true)
                followed[path] = nil
            }
        }
    }

    /// Prints what is left of every file and stops.
    func finish() {
        queue.sync {
            timer?.cancel()
            timer = nil
            for path in followed.keys.sorted() { read(path, final: true) }
            followed.removeAll()
        }
    }

    /// The rank and the rest of a line mpirun tagged (`[1,3]<stdout>:text`), or nil.
    static func rankTag(_ line: Data) -> (rank: Int, rest: Data)? {
        guard line.first == UInt8(ascii: "["), let close = line.prefix(40).firstIndex(of: UInt8(ascii: "]")) else { return nil }
        let inside = String(decoding: line[line.index(after: line.startIndex)..<close], as: UTF8.self).split(separator: ",")
        guard inside.count == 2, inside[0].allSatisfy(\.isNumber), let rank = Int(inside[1]) else { return nil }
        let after = line[line.index(after: close)...]
        for stream in ["<stdout>:", "<stderr>:"] where after.starts(with: Data(stream.utf8)) {
            return (rank, Data(after.dropFirst(stream.utf8.count)))
        }
        return nil
    }

    private func readAll() {
        for path in followed.keys.sorted() { read(path, final: false) }
    }

    private func read(_ path: String, final: Bool) {
        guard var file = followed[path] else { return }
        defer { followed[path] = file }
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: file.offset)) != nil, let data = try? handle.read(upToCount: 1 << 20), !data.isEmpty || final else { return }
        file.offset += UInt64(data.count)
        var text = file.partial + data
        var lines: [Data] = []
        while let newline = text.firstIndex(of: UInt8(ascii: "\n")) {
            lines.append(text[text.startIndex...newline])
            text = Data(text[text.index(after: newline)...])
        }
        if (final || text.count > 1 << 16), !text.isEmpty {  // a last line, or one too long to hold back
            lines.append(text + Data("\n".utf8))
            text = Data()
        }
        file.partial = text
        guard !lines.isEmpty else { return }
        var out = Data()
        for line in lines {
            // mpirun's --tag-output (`[1,3]<stdout>:…`) as srun's --label writes it (`3: …`).
            if let (rank, rest) = Self.rankTag(line) {
                out += Data((labelled ? "\(file.label) \(rank): " : "\(rank): ").utf8) + rest
                continue
            }
            if labelled { out += Data("\(file.label): ".utf8) }
            out += line
        }
        if clearsProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        (file.toStandardError ? FileHandle.standardError : FileHandle.standardOutput).write(out)
    }
}
