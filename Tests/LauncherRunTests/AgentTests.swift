import Foundation
import XCTest
@testable import Launcher

/// The node agent and the controller's channel to it, with the agent run here directly (no
/// ssh): hello, tasks as its children, signals, sweeps, ends written down, broken peers.
/// The virtual cluster tests run the same agent over real ssh.
final class AgentTests: XCTestCase {
    let work = Harness.temporaryDirectory()
    var settings: ExecutionSettings { Harness.settings(work) }
    let node = Node(id: "here", address: "here", slots: 2)

    func hello(stateId: String? = nil, outlive: Bool = false) -> ToAgent {
        .hello(protocolVersion: AgentProtocol.version, build: AgentProtocol.build(of: Harness.executable("cohort")), workDirectory: work, stateId: stateId ?? settings.stateId, tasksOutliveChannel: outlive)
    }

    func agent(_ hello: ToAgent? = nil) -> AgentChannel {
        AgentChannel(node: node, command: [Harness.executable("cohort"), "agent", "--stdio"], hello: hello ?? self.hello())
    }

    func marker() -> String { "agent-test-\(UUID().uuidString.prefix(8))" }

    func testHelloReportsTheNodeAndAForeignWorkTreeIsRefused() throws {
        let channel = agent()
        defer { channel.release() }
        let state = channel.waitUntilSettled(timeout: 20)
        guard case .ready(let hello) = state else { return XCTFail("not ready: \(state)") }
        XCTAssertEqual(hello.protocolVersion, AgentProtocol.version)
        XCTAssertGreaterThan(hello.cores, 0)
        XCTAssertGreaterThan(hello.memoryBytes, 1 << 20)
        XCTAssertTrue(hello.sharesWorkDirectory)
        XCTAssertNil(hello.refusal)
        XCTAssertFalse(hello.hasActiveRDMAPort, "no RDMA device here")

        let foreign = agent(self.hello(stateId: "0123456789abcdef"))
        guard case .lost(let reason) = foreign.waitUntilSettled(timeout: 20) else { return XCTFail("a foreign work tree was served") }
        XCTAssertTrue(reason.contains("does not see the work directory \(work)"), reason)
        let old = agent(.hello(protocolVersion: 999, build: AgentProtocol.build(of: Harness.executable("cohort")), workDirectory: work, stateId: settings.stateId, tasksOutliveChannel: false))
        guard case .lost(let why) = old.waitUntilSettled(timeout: 20) else { return XCTFail("a protocol mismatch was served") }
        XCTAssertTrue(why.contains("protocol"), why)
        // Another build of Cohort on the node (the controller's here is the test process's).
        let other = agent(.hello(protocolVersion: AgentProtocol.version, build: "0123456789abcdef0123", workDirectory: work, stateId: settings.stateId,
                                 tasksOutliveChannel: false))
        guard case .lost(let mismatch) = other.waitUntilSettled(timeout: 20) else { return XCTFail("another build was served") }
        XCTAssertTrue(mismatch.contains("the controller's is 0123456789ab: install the same Cohort on every node"), mismatch)
        XCTAssertEqual(hello.build.count, 40, "the agent knows its build id: \(hello.build)")
    }

    /// A refused channel is lost the whole way: whoever watches it is told and its write end
    /// is closed (it once only changed state: watchers waited for ever, and writes went on to
    /// an agent that had left).
    func testARefusedChannelIsLostTheWholeWay() throws {
        let foreign = AgentChannel(node: node, command: [Harness.executable("cohort"), "agent", "--stdio"],
                                   hello: hello(stateId: "0123456789abcdef"), startingNow: false)
        let told = DispatchSemaphore(value: 0)
        _ = foreign.watch { _ in told.signal() }
        foreign.start()
        XCTAssertEqual(told.wait(timeout: .now() + 20), .success, "the refusal reached the channel's watchers")
        XCTAssertTrue(foreign.lostReason?.contains("the agent refused") == true, foreign.lostReason ?? "")
        XCTAssertFalse(foreign.send(.ping(id: 1)), "nothing more goes to an agent that refused")
    }

    func testATaskRunsAsTheAgentsChildWithItsVariablesAndItsEndIsWrittenDown() throws {
        let channel = agent()
        defer { channel.release() }
        XCTAssertNotNil(channel.waitUntilSettled(timeout: 20))
        let child = try channel.spawn(["sh", "-c", "echo \"[$X]\"; pwd; echo oops >&2; exit 3"], variables: ["X": "a b 'c'"], directory: work,
                                      stdout: "\(work)/out", stderr: "\(work)/err", statusFile: "\(work)/status")
        XCTAssertEqual(child.wait(), .exited(3))
        XCTAssertEqual(Harness.read("\(work)/out"), "[a b 'c']\n\(work)\n")
        XCTAssertEqual(Harness.read("\(work)/err"), "oops\n")
        XCTAssertEqual(ExitStatus(contentsOf: "\(work)/status")?.termination, .exited(3))
        XCTAssertThrowsError(try channel.spawn(["/no/such/program"], variables: [:], directory: work, stdout: nil, stderr: nil, statusFile: nil)) {
            XCTAssertTrue("\($0)".contains("cannot start /no/such/program: No such file or directory"), "\($0)")
        }
    }

    /// Hundreds of instant tasks at once through one agent: each start is answered before its
    /// end (an end reported first once left its starter waiting for ever).
    func testManyInstantTasksAllStartAndEnd() throws {
        let channel = agent()
        defer { channel.release() }
        XCTAssertNotNil(channel.waitUntilSettled(timeout: 20))
        let directory = work
        final class Box: @unchecked Sendable { var ends: [Termination?] = [] }
        let box = Box(), done = DispatchSemaphore(value: 0)
        Thread {
            box.ends = concurrentMap(Array(0..<400)) { index -> Termination? in
                try? channel.spawn(["sh", "-c", "exit \(index % 7)"], variables: [:], directory: directory, stdout: nil, stderr: nil, statusFile: nil).wait()
            }
            done.signal()
        }.start()
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success, "some task's start or end never came")
        XCTAssertEqual(box.ends.count, 400)
        XCTAssertEqual(zip(box.ends, 0...).filter { $0.0 != .exited(Int32($0.1 % 7)) }.count, 0, "tasks that ended otherwise than they exited")
    }

    func testASignalReachesTheTasksWholeGroupAndASweepItsStrays() throws {
        let channel = agent()
        defer { channel.release() }
        XCTAssertNotNil(channel.waitUntilSettled(timeout: 20))
        let id = marker()
        let child = try channel.spawn(["sh", "-c", "sleep 100 & sleep 100; wait"], variables: [ProcessSweeper.marker: id], directory: work,
                                      stdout: nil, stderr: nil, statusFile: nil)
        usleep(300_000)
        XCTAssertEqual(ProcessSweeper.localProcesses(attemptId: id).count, 3)
        child.signalGroup(SIGKILL)
        XCTAssertEqual(child.wait(), .signaled(SIGKILL))
        // The group's other member got the same SIGKILL; its death is not instant (seen once
        // under load: still in /proc right after the leader was reaped).
        let gone = Date() + 2
        while !ProcessSweeper.localProcesses(attemptId: id).isEmpty && Date() < gone { usleep(20_000) }
        XCTAssertEqual(ProcessSweeper.localProcesses(attemptId: id), [])

        // A daemon that left the group is found by its marker.
        let stray = marker()
        XCTAssertEqual(try channel.spawn(["sh", "-c", "setsid sleep 100 & exit 0"], variables: [ProcessSweeper.marker: stray], directory: work,
                                         stdout: nil, stderr: nil, statusFile: nil).wait(), .exited(0))
        usleep(200_000)
        XCTAssertEqual(ProcessSweeper.localProcesses(attemptId: stray).count, 1)
        XCTAssertTrue(channel.sweep(variable: ProcessSweeper.marker, values: ["other", stray]))
        XCTAssertEqual(ProcessSweeper.localProcesses(attemptId: stray), [])
    }

    func testAHealthScriptsErrorsComeBack() throws {
        let channel = agent()
        defer { channel.release() }
        XCTAssertNotNil(channel.waitUntilSettled(timeout: 20))
        let outcome = try XCTUnwrap(channel.run(["sh", "-c", "echo scratch disk missing on $COHORT_NODE_ID >&2; exit 1"],
                                                variables: ["COHORT_NODE_ID": "here"], directory: "/", timeout: 10))
        XCTAssertEqual(outcome.0, .exited(1))
        XCTAssertEqual(outcome.1, ["scratch disk missing on here"])
        XCTAssertNil(channel.run(["sleep", "100"], variables: [:], directory: "/", timeout: 0.5), "a hanging script runs out of time")
    }

    func testAKilledAgentIsALostChannelAndItsTaskIsUntracked() throws {
        let channel = agent()
        let hello = try XCTUnwrap(channel.hello ?? { _ = channel.waitUntilSettled(timeout: 20); return channel.hello }())
        let id = marker()
        defer { ProcessSweeper.killLocal(attemptId: id) }
        let child = try channel.spawn(["sleep", "100"], variables: [ProcessSweeper.marker: id], directory: work, stdout: nil, stderr: nil, statusFile: nil)
        let killed = Date()
        kill(hello.pid, SIGKILL)
        _ = child.wait()
        XCTAssertTrue(child.untracked)
        XCTAssertLessThan(Date().timeIntervalSince(killed), 1, "the channel's end is seen at once")
        XCTAssertTrue(channel.lostReason?.contains("channel closed") == true, channel.lostReason ?? "")
        XCTAssertThrowsError(try channel.spawn(["true"], variables: [:], directory: work, stdout: nil, stderr: nil, statusFile: nil)) {
            XCTAssertTrue($0 is AgentChannel.Lost, "\($0)")
        }
    }

    /// A task's waiter wakes only after the channel's watchers were told: the executor then
    /// finds its node lost, not a task whose watcher vanished (CI once saw `interrupted`).
    func testWatchersHearOfALossBeforeATasksWaiterWakes() throws {
        let channel = agent()
        let hello = try XCTUnwrap(channel.hello ?? { _ = channel.waitUntilSettled(timeout: 20); return channel.hello }())
        let id = marker()
        defer { ProcessSweeper.killLocal(attemptId: id) }
        let child = try channel.spawn(["sleep", "100"], variables: [ProcessSweeper.marker: id], directory: work, stdout: nil, stderr: nil, statusFile: nil)
        let told = Flag()
        _ = channel.watch { _ in usleep(300_000); told.set() }  // a slow watcher
        kill(hello.pid, SIGKILL)
        _ = child.wait()
        XCTAssertTrue(child.untracked)
        XCTAssertTrue(told.isSet, "the task's waiter woke before the loss reached the watchers")
    }

    func testAHungAgentIsLostWhenItsHeartbeatStops() throws {
        let fleet = AgentFleet(pool: Pool.fromHosts(name: "p", entries: [HostEntry(host: "here", slots: 1)]), settings: settings)
        defer { fleet.close() }
        let channel = AgentChannel(node: node, command: [Harness.executable("cohort"), "agent", "--stdio"], hello: hello())
        fleet.adopt(channel)
        let hello = try XCTUnwrap({ _ = channel.waitUntilSettled(timeout: 20); return channel.hello }())
        let watch = fleet.watch([node]) { _ in }
        let stopped = Date()
        kill(hello.pid, SIGSTOP)
        defer { kill(hello.pid, SIGKILL) }
        while channel.lostReason == nil && Date().timeIntervalSince(stopped) < 10 { usleep(50_000) }
        let detection = Date().timeIntervalSince(stopped)
        print("a hung agent was counted lost \(String(format: "%.2f", detection)) s after it stopped")
        XCTAssertLessThanOrEqual(detection, 3)
        XCTAssertTrue(channel.lostReason?.contains("no heartbeat") == true, channel.lostReason ?? "")
        // The channel is marked lost before its watchers are told (on the thread that lost it).
        let marked = Date()
        while watch.lostNode == nil && Date().timeIntervalSince(marked) < 2 { usleep(10_000) }
        XCTAssertEqual(watch.lostNode?.node, "here")
    }

    func testABrokenPeerIsCutOffNotTrusted() throws {
        for (bytes, expected) in [("\\177\\377\\377\\377", "a frame of 2147483647 bytes"), ("\\000\\000\\000\\003abc", "a malformed message")] {
            let channel = AgentChannel(node: node, command: ["sh", "-c", "printf '\(bytes)'; sleep 30"], hello: hello())
            let started = Date()
            guard case .lost(let reason) = channel.waitUntilSettled(timeout: 20) else { return XCTFail("a broken peer was served") }
            XCTAssertTrue(reason.contains(expected), reason)
            XCTAssertLessThan(Date().timeIntervalSince(started), 5, "cut off at once, not after its sleep")
        }
    }

    func testAServedControllersTasksOutliveTheChannelAndCohortRunsDoNot() throws {
        let outliving = agent(hello(outlive: true))
        XCTAssertNotNil(outliving.waitUntilSettled(timeout: 20))
        let kept = marker()
        defer { ProcessSweeper.killLocal(attemptId: kept) }
        _ = try outliving.spawn(["sh", "-c", "sleep 1; exit 4"], variables: [ProcessSweeper.marker: kept], directory: work,
                                stdout: nil, stderr: nil, statusFile: "\(work)/kept-status")
        outliving.release()
        let released = Date()
        while ExitStatus(contentsOf: "\(work)/kept-status") == nil && Date().timeIntervalSince(released) < 10 { usleep(100_000) }
        XCTAssertEqual(ExitStatus(contentsOf: "\(work)/kept-status")?.termination, .exited(4), "the task ran on and its end was written down")

        let ending = agent()
        XCTAssertNotNil(ending.waitUntilSettled(timeout: 20))
        let gone = marker()
        _ = try ending.spawn(["sleep", "100"], variables: [ProcessSweeper.marker: gone], directory: work, stdout: nil, stderr: nil, statusFile: nil)
        XCTAssertEqual(ProcessSweeper.localProcesses(attemptId: gone).count, 1)
        ending.release()
        let deadline = Date() + 5
        while !ProcessSweeper.localProcesses(attemptId: gone).isEmpty && Date() < deadline { usleep(50_000) }
        XCTAssertEqual(ProcessSweeper.localProcesses(attemptId: gone), [], "cohort run's tasks end with its channel")
    }
}

/// A flag set on one thread and read on another.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
