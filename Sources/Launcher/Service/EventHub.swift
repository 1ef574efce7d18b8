import Foundation

/// One thing that happened in the service, as `GET /v1/events` streams it.
public struct ServiceEvent: Codable, Sendable, Equatable {
    /// Increasing from 1 for the life of the server (a stream resumes after the last it got).
    public var id: Int
    public var time: Date
    /// `job.submitted`, `job.started`, `job.resumed`, `job.cancelling`, `job.disabled`,
    /// `job.enabled`, `job.completed`, `job.notified` (its webhook's answer), `attempt.started`,
    /// `attempt.ended`, `node.changed`.
    public var kind: String
    public var job: String?
    /// The task's display id (`pi[3]`, `solve` replica 2 as `solve[r2]`).
    public var task: String?
    public var attempt: Int?
    public var nodes: [String]?
    /// How an attempt ended (`success` or a failure category), a task's or job's state after.
    public var result: String?
    public var state: String?
    public var message: String?

    public init(id: Int = 0, time: Date = Date(), kind: String, job: String? = nil, task: String? = nil, attempt: Int? = nil,
                nodes: [String]? = nil, result: String? = nil, state: String? = nil, message: String? = nil) {
        self.id = id
        self.time = time
        self.kind = kind
        self.job = job
        self.task = task
        self.attempt = attempt
        self.nodes = nodes
        self.result = result
        self.state = state
        self.message = message
    }
}

/// The service's recent events, kept in a ring (the last `capacity`) for streams to read:
/// a publisher never waits for a reader, and a reader that falls more than `capacity`
/// behind is told how many it missed instead of slowing the controller down.
public final class EventHub: @unchecked Sendable {
    public let capacity: Int
    private let lock = NSLock()
    private var ring: [ServiceEvent] = []
    private var start = 0
    private var lastId = 0

    public init(capacity: Int = 20_000) {
        self.capacity = capacity
        ring.reserveCapacity(capacity)
    }

    public func publish(_ event: ServiceEvent) {
        lock.lock()
        defer { lock.unlock() }
        lastId += 1
        var event = event
        event.id = lastId
        if ring.count < capacity {
            ring.append(event)
        } else {
            ring[start] = event
            start = (start + 1) % capacity
        }
    }

    /// The id of the newest event (0 before the first).
    public var newestId: Int { lock.lock(); defer { lock.unlock() }; return lastId }

    /// Events with an id above `id`, oldest first, at most `limit`; and how many newer than
    /// `id` are gone from the ring already.
    public func events(after id: Int, limit: Int = 1_000) -> (events: [ServiceEvent], missed: Int) {
        lock.lock()
        defer { lock.unlock() }
        guard id < lastId, !ring.isEmpty else { return ([], 0) }
        let oldest = ring[start].id
        let missed = max(0, oldest - id - 1)
        let first = max(id + 1, oldest)
        let count = min(limit, lastId - first + 1)
        var found: [ServiceEvent] = []
        found.reserveCapacity(count)
        for offset in 0..<count { found.append(ring[(start + first - oldest + offset) % ring.count]) }
        return (found, missed)
    }
}
