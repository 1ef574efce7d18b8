import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The listening end of `cohort-rsh`, the remote shell mpirun is given: a Unix socket in a
/// directory only this user can enter. Each connection asks to run a command line on a
/// host; `start` runs it (the controller: through that node's agent; an agent: by asking
/// its controller) and the output and exit code go back through `Reply`. So a 32-node
/// launch costs 32 messages on channels already open, not 32 ssh handshakes.
final class ShellSocket: @unchecked Sendable {
    /// Starts `line` on `host`, answering through the reply; returns what ends it early.
    typealias Start = @Sendable (_ host: String, _ line: String, _ reply: Reply) -> @Sendable () -> Void

    let path: String
    private let directory: String
    private let listener: Int32
    private let start: Start

    init(start: @escaping Start) throws {
        _ = brokenPipesAreErrors
        var template = Array((NSTemporaryDirectory() + "/cohort-rsh-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw AgentChannel.Lost(reason: "cannot make a socket directory: \(String(cString: strerror(errno)))") }
        directory = String(cString: made)
        path = "\(directory)/s"
        self.start = start
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard listener >= 0, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            rmdir(directory)
            throw AgentChannel.Lost(reason: "cannot make the socket \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 128) == 0 else {
            Glibc.close(listener)
            rmdir(directory)
            throw AgentChannel.Lost(reason: "cannot listen on \(path): \(String(cString: strerror(errno)))")
        }
        let thread = Thread { [self] in accepting() }
        thread.stackSize = 256 << 10
        thread.start()
    }

    func close() {
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
        unlink(path)
        rmdir(directory)
    }

    private func accepting() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return  // closed
            }
            let thread = Thread { [self] in serve(connection) }
            thread.stackSize = 256 << 10
            thread.start()
        }
    }

    /// One command: read the request, start it, and wait for the client's end; a client that
    /// goes away first (mpirun ended it) has its command ended.
    private func serve(_ connection: Int32) {
        let reply = Reply(connection)
        var header = [UInt8](repeating: 0, count: 4)
        guard readAll(connection, &header) else { return reply.close() }
        let length = header.reduce(0) { $0 << 8 | Int($1) }
        guard length > 0, length <= 1 << 20 else { reply.finish(error: "cohort-rsh: a request of \(length) bytes", code: 255); return reply.close() }
        var body = [UInt8](repeating: 0, count: length)
        guard readAll(connection, &body) else { return reply.close() }
        let fields = body.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
        guard fields.count >= 2 else { reply.finish(error: "cohort-rsh: no command given", code: 255); return reply.close() }
        let cancel = start(fields[0], fields.dropFirst().joined(separator: " "), reply)
        // The client sends nothing more: a read that returns is its end.
        var byte: UInt8 = 0
        while read(connection, &byte, 1) < 0 && errno == EINTR {}
        if !reply.isFinished {
            cancel()
            reply.waitUntilFinished(seconds: 10)
        }
        reply.close()
    }

    private func readAll(_ descriptor: Int32, _ buffer: inout [UInt8]) -> Bool {
        var offset = 0
        while offset < buffer.count {
            let got = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { return false }
            offset += got
        }
        return true
    }

    /// What goes back to one cohort-rsh: output frames (kind 1 stdout, 2 stderr), then the
    /// exit frame (kind 3); written from whichever thread has them, closed by the connection's.
    final class Reply: @unchecked Sendable {
        private let lock = NSLock()
        private var descriptor: Int32
        private var finished = false
        private let done = DispatchSemaphore(value: 0)

        init(_ descriptor: Int32) { self.descriptor = descriptor }

        var isFinished: Bool { lock.lock(); defer { lock.unlock() }; return finished }

        func waitUntilFinished(seconds: Double) { _ = done.wait(timeout: .now() + seconds) }

        func send(kind: UInt8, _ data: Data) {
            lock.lock(); defer { lock.unlock() }
            guard !finished else { return }
            write(kind, data)
        }

        func finish(error: String?, code: Int32) {
            lock.lock()
            guard !finished else { return lock.unlock() }
            if let error { write(2, Data((error + "\n").utf8)) }
            let value = UInt32(bitPattern: code).bigEndian
            write(3, withUnsafeBytes(of: value) { Data($0) })
            finished = true
            lock.unlock()
            done.signal()
        }

        func close() {
            lock.lock(); defer { lock.unlock() }
            finished = true
            if descriptor >= 0 { Glibc.close(descriptor); descriptor = -1 }
        }

        private func write(_ kind: UInt8, _ data: Data) {  // under lock
            guard descriptor >= 0 else { return }
            var frame = Data([kind])
            let length = UInt32(data.count).bigEndian
            frame.append(withUnsafeBytes(of: length) { Data($0) })
            frame.append(data)
            AgentFrame.write(frame, to: descriptor)
        }
    }
}
