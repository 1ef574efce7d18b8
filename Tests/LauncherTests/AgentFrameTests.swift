import Foundation
import XCTest
@testable import Launcher

/// The agent protocol's framing: whole messages come back from any cut of the byte stream,
/// and nothing a peer sends (garbage, lies about lengths, JSON of the wrong shape) crashes
/// the decoder or makes it buffer without bound.
final class AgentFrameTests: XCTestCase {
    let messages: [FromAgent] = [
        .hello(node: AgentHello(protocolVersion: 1, build: "ab12", hostname: "node1", pid: 42, cores: 2, memoryBytes: 1 << 30, gpus: 0,
                          rdma: [RDMAProbe.Device(name: "mlx5_0", activePorts: [1])], load: 0.5, sharesWorkDirectory: true, refusal: nil)),
        .heartbeat(load: 1.25, running: 3),
        .started(id: 7, pid: 1234),
        .exited(id: 7, code: 3, signal: nil, errors: ["it's \"bad\"", "ünïcode"]),
        .output(id: 8, stream: 2, data: Data([0, 255, 10, 13])),
        .swept(id: 9, killed: 2),
    ]

    func testMessagesSurviveAnyCutOfTheStream() throws {
        try messagesSurviveAnyCut(lines: false)
    }

    /// Line mode (a channel carried by srun, which passes only whole lines along): each frame
    /// is one line, whatever the messages hold (newlines in output, binary data).
    func testInLineModeEachFrameIsOneLineAndSurvivesAnyCut() throws {
        try messagesSurviveAnyCut(lines: true)
        for message in messages {
            let frame = AgentFrame.encode(message, lines: true)
            XCTAssertEqual(frame.filter { $0 == 0x0A }.count, 1)
            XCTAssertEqual(frame.last, 0x0A)
        }
        var decoder = FrameDecoder(limit: 16, lines: true)
        decoder.append(Array(repeating: UInt8(ascii: "x"), count: 17))
        XCTAssertThrowsError(try decoder.next(), "a line longer than the limit is refused before its end comes")
    }

    func messagesSurviveAnyCut(lines: Bool) throws {
        let stream = messages.reduce(Data()) { $0 + AgentFrame.encode($1, lines: lines) }
        var random = SeededRandom(seed: 7)
        for _ in 0..<200 {
            var decoder = FrameDecoder(lines: lines)
            var decoded: [FromAgent] = []
            var offset = 0
            while offset < stream.count {
                let size = random.next(17) + 1
                decoder.append(stream[offset..<min(stream.count, offset + size)])
                offset += size
                while let body = try decoder.next() { decoded.append(try AgentFrame.decode(FromAgent.self, from: body)) }
            }
            XCTAssertEqual(decoded, messages)
        }
    }

    func testRequestsRoundTrip() throws {
        let request = ToAgent.spawn(id: 1, arguments: ["sh", "-c", "echo $X"], environment: ["X": "a b"], directory: "/w", stdout: "/w/o",
                                    stderr: nil, statusFile: "/w/s", keepErrors: false, stream: false, relayShell: true)
        var decoder = FrameDecoder()
        decoder.append(AgentFrame.encode(request))
        XCTAssertEqual(try AgentFrame.decode(ToAgent.self, from: XCTUnwrap(decoder.next())), request)
        // A restarted controller's: a sweep that spares adopted attempts, an adoption and its end.
        for message in [ToAgent.sweep(id: 2, variable: "COHORT_JOB_KEY", values: ["s.j"], sparing: ["s.j.t.a1"]),
                        .sweep(id: 3, variable: "COHORT_ATTEMPT_ID", values: ["s.j.t.a2"], sparing: nil),
                        .adopt(id: 4, attemptId: "s.j.t.a1", statusFile: "/w/j/t/attempt-1/exit-status")] {
            decoder.append(AgentFrame.encode(message))
            XCTAssertEqual(try AgentFrame.decode(ToAgent.self, from: XCTUnwrap(decoder.next())), message)
        }
        let line = ExitStatus(line: "exited 3 1.5 2.25\n")
        XCTAssertEqual(line.flatMap { ExitStatus(line: $0.line) }, line, "an end travels as the spawner's line")
        for message in [FromAgent.adoptedEnded(id: 4, status: line?.line), .adoptedEnded(id: 5, status: nil)] {
            decoder.append(AgentFrame.encode(message))
            XCTAssertEqual(try AgentFrame.decode(FromAgent.self, from: XCTUnwrap(decoder.next())), message)
        }
    }

    /// The controller counts heartbeats by their first bytes without decoding them.
    func testAHeartbeatStartsWithTheBytesTheControllerCounts() {
        let frame = AgentFrame.encode(FromAgent.heartbeat(load: 0.25, running: 2))
        XCTAssertTrue(frame.dropFirst(4).starts(with: Array(#"{"heartbeat":"#.utf8)), String(decoding: frame.dropFirst(4), as: UTF8.self))
    }

    func testAnOversizedLengthIsRefusedBeforeItsBodyIsRead() {
        var decoder = FrameDecoder(limit: 1024)
        decoder.append([0x7f, 0xff, 0xff, 0xff])
        XCTAssertThrowsError(try decoder.next()) { XCTAssertEqual($0 as? AgentFrame.Problem, .oversized(0x7fff_ffff)) }
    }

    func testFuzzedStreamsNeverCrashTheDecoder() {
        var random = SeededRandom(seed: UInt64(Date().timeIntervalSince1970))
        let valid = messages.map { AgentFrame.encode($0) }
        var problems = 0, frames = 0
        for _ in 0..<3_000 {
            var bytes = [UInt8](valid[random.next(valid.count)])
            switch random.next(3) {
            case 0:  // flip bytes anywhere, the length included
                for _ in 0..<(1 + random.next(4)) { bytes[random.next(bytes.count)] ^= UInt8(1 + random.next(255)) }
            case 1:  // pure noise
                bytes = (0..<random.next(64)).map { _ in UInt8(random.next(256)) }
            default:  // a valid length around a body of noise
                let body = (0..<random.next(40)).map { _ in UInt8(random.next(256)) }
                bytes = [0, 0, 0, UInt8(body.count)] + body
            }
            var decoder = FrameDecoder(limit: 4096)
            decoder.append(bytes)
            do {
                while let body = try decoder.next() {
                    frames += 1
                    _ = try AgentFrame.decode(FromAgent.self, from: body)
                }
            } catch {
                problems += 1
            }
        }
        // Most mutations are caught as errors (and none crashed to get here).
        XCTAssertGreaterThan(problems, 1_500)
        XCTAssertGreaterThan(frames, 1_000)
    }
}
