import CSpawn
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the controller and a node agent say to each other over the agent's channel (the
/// stdin and stdout of `ssh node cohort agent --stdio`): frames of a 4-byte big-endian
/// length and a JSON body. Requests carry ids, so many are in flight at once; the first
/// exchange is the hello, which settles the protocol version.
public enum AgentProtocol {
    /// Bumped whenever a message changes shape; both ends must agree at hello.
    public static let version = 3
    /// A frame larger than this ends the channel: no message of ours comes near it (an
    /// environment is at most a few hundred KiB), so it is a broken or hostile peer.
    public static let maximumFrame = 8 << 20
    /// How often an agent says it is alive, and how long the controller waits without a
    /// word before it counts the node lost (checked every 0.2 s: lost within 2.5 s, and a
    /// busy node may stall its agent for 1.7 s without being counted lost).
    public static let heartbeatInterval: Double = 0.5
    public static let silenceLimit: Double = 2.25

    /// The GNU build id of the executable at `path` ("" if it has none): the `cohort` the
    /// controller starts agents from and the one an agent runs must be the same build, or
    /// the agent refuses and names both.
    public static func build(of path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 129)
        return cohort_build_id(path, &buffer, buffer.count) == 0 ? String(cString: buffer) : ""
    }
}

/// A controller writes to pipes and sockets of processes that may die at any moment (agents,
/// cohort-spawner, cohort-rsh clients): a closed one must be a write error, never the death of
/// the controller by SIGPIPE. Touched by each of them before its first write.
let brokenPipesAreErrors: Void = { signal(SIGPIPE, SIG_IGN) }()

/// From the controller to an agent.
public enum ToAgent: Codable, Sendable, Equatable {
    /// First message. `tasksOutliveChannel`: a served controller's tasks run on (and their
    /// ends are written to `exit-status`) if the channel closes; `cohort run`'s end with it.
    case hello(protocolVersion: Int, build: String, workDirectory: String, stateId: String, tasksOutliveChannel: Bool)
    /// Start `arguments` in its own process group, with the agent's environment plus
    /// `environment`, in `directory`. Output is appended to the files, or (`stream`) sent
    /// back as `output` frames; `statusFile` gets the end as cohort-spawner writes it;
    /// `keepErrors`: the last lines of stderr come back with the end (health scripts).
    /// `relayShell`: the task gets `COHORT_AGENT_SOCKET`, where the node's `cohort-rsh` asks
    /// this agent (and it the controller) to start commands on other nodes: an mpirun the
    /// task runs itself (`launch: raw`) starts its daemons through the agents too.
    case spawn(id: UInt64, arguments: [String], environment: [String: String], directory: String,
               stdout: String?, stderr: String?, statusFile: String?, keepErrors: Bool, stream: Bool, relayShell: Bool)
    /// Signals the process group of the task started by request `id`.
    case signal(id: UInt64, signal: Int32)
    /// Kills every process of this node whose environment holds `variable=value` for one of
    /// `values`, but those of the attempts in `sparing` (a restarted controller adopts them).
    case sweep(id: UInt64, variable: String, values: [String], sparing: [String]?)
    /// Watches the attempt `attemptId`, which a killed controller's agent still runs (see
    /// `AdoptedAttempts`), until its last process is gone: its end comes back as
    /// `adoptedEnded`; `signal` with this id reaches all of its processes.
    case adopt(id: UInt64, attemptId: String, statusFile: String)
    case ping(id: UInt64)
    /// Output of, and the end of, a command the agent asked for (`FromAgent.shell`).
    case shellOutput(id: UInt64, stream: Int32, data: Data)
    case shellEnded(id: UInt64, code: Int32)
}

/// What an agent reports about its node at hello.
public struct AgentHello: Codable, Sendable, Equatable {
    public var protocolVersion: Int
    /// The agent's build id (`AgentProtocol.build`).
    public var build: String
    public var hostname: String
    public var pid: Int32
    public var cores: Int
    public var memoryBytes: UInt64
    public var gpus: Int
    public var rdma: [RDMAProbe.Device]
    public var load: Double
    /// Whether the node sees the controller's work directory (the same `.cohort-id` in it):
    /// tasks write their output and ends there.
    public var sharesWorkDirectory: Bool
    /// Why the agent cannot serve this controller, if it cannot (protocol, work directory).
    public var refusal: String?

    public var hasActiveRDMAPort: Bool { rdma.contains { !$0.activePorts.isEmpty } }
}

/// From an agent to the controller.
public enum FromAgent: Codable, Sendable, Equatable {
    case hello(node: AgentHello)
    case heartbeat(load: Double, running: Int)
    case started(id: UInt64, pid: Int32)
    case failedToStart(id: UInt64, errno: Int32)
    /// `code` or `signal` is set; `errors` are stderr's last lines when asked for.
    case exited(id: UInt64, code: Int32?, signal: Int32?, errors: [String]?)
    case output(id: UInt64, stream: Int32, data: Data)
    case swept(id: UInt64, killed: Int)
    /// An adopted attempt's processes are gone: its end as its parent wrote it (an
    /// `exit-status` line), or nil if none was written.
    case adoptedEnded(id: UInt64, status: String?)
    case pong(id: UInt64)
    /// A task's `cohort-rsh` asks to run `line` on `host` (`id` is the agent's own), and
    /// later, if it went away first, to end it.
    case shell(id: UInt64, host: String, line: String)
    case shellClosed(id: UInt64)
}

extension FromAgent {
    var termination: Termination? {
        guard case .exited(_, let code, let signal, _) = self else { return nil }
        if let signal { return .signaled(signal) }
        return .exited(code ?? 127)
    }
}

/// Frames on a byte stream: a 4-byte big-endian length, then that many bytes of JSON.
public enum AgentFrame {
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case oversized(Int)
        case malformed(String)

        public var description: String {
            switch self {
            case .oversized(let size): "a frame of \(size) bytes (at most \(AgentProtocol.maximumFrame))"
            case .malformed(let why): "a malformed message: \(why)"
            }
        }
    }

    /// One frame: a 4-byte big-endian length and the JSON body; or, in line mode, the body and
    /// a newline (JSON as encoded here holds none), for carriers that pass only whole lines
    /// along at once (srun's standard output).
    public static func encode<Message: Encodable>(_ message: Message, lines: Bool = false) -> Data {
        var body = (try? JSONEncoder().encode(message)) ?? Data()
        if lines { body.append(0x0A); return body }
        var length = UInt32(body.count).bigEndian
        var frame = Data(bytes: &length, count: 4)
        frame.append(body)
        return frame
    }

    /// Writes all of `data` to `descriptor` (a pipe or a socket); false if it closed first.
    @discardableResult
    static func write(_ data: Data, to descriptor: Int32) -> Bool {
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let wrote = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if wrote < 0 && errno == EINTR { continue }
                if wrote <= 0 { return false }
                offset += wrote
            }
            return true
        }
    }

    public static func decode<Message: Decodable>(_ type: Message.Type, from body: Data) throws(Problem) -> Message {
        do { return try JSONDecoder().decode(type, from: body) } catch {
            throw .malformed(String(describing: error).prefix(200).description)
        }
    }
}

/// Cuts a byte stream into frame bodies. Bytes come in any pieces; a length above the
/// limit is an error at once (before its body is read), so a hostile peer cannot make the
/// controller buffer gigabytes.
public struct FrameDecoder {
    private var buffer: [UInt8] = []
    private var start = 0
    public let limit: Int
    /// Frames are lines (see `AgentFrame.encode(_:lines:)`).
    public let lines: Bool

    public init(limit: Int = AgentProtocol.maximumFrame, lines: Bool = false) {
        self.limit = limit
        self.lines = lines
    }

    public mutating func append<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole frame's body, or nil until more bytes come.
    public mutating func next() throws(AgentFrame.Problem) -> Data? {
        if lines {
            guard let end = buffer[start...].firstIndex(of: 0x0A) else {
                if buffer.count - start > limit { throw .oversized(buffer.count - start) }
                return nil
            }
            guard end - start <= limit else { throw .oversized(end - start) }
            let body = Data(buffer[start..<end])
            start = end + 1
            return body
        }
        guard buffer.count - start >= 4 else { return nil }
        let length = buffer[start..<start + 4].reduce(0) { $0 << 8 | Int($1) }
        guard length <= limit else { throw .oversized(length) }
        guard buffer.count - start - 4 >= length else { return nil }
        let body = Data(buffer[start + 4..<start + 4 + length])
        start += 4 + length
        return body
    }
}
