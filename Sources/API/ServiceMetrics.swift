import Foundation
import HTTPTypes
import Hummingbird
import Launcher
import Metrics
import Prometheus

/// `GET /metrics` of `cohort serve`, in Prometheus's text format. Two kinds of figures:
/// what the engine records as it happens (attempts started and ended by how, queue waits,
/// run times, phase durations, scheduling passes, SQLite writes; `EngineMetrics`, through
/// swift-metrics) and API requests by route and status (`RequestMetrics`), which accumulate
/// in this registry; and what is read at each scrape (jobs by state, nodes by state and
/// slots per pool, tasks waiting and running, agents' heartbeat ages), set as gauges then.
public final class ServiceMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    public init() {}

    /// Every family's HELP line. swift-prometheus's own swift-metrics factory writes none,
    /// which `promtool check metrics` rejects: ours gives each family its text.
    static let help: [String: String] = [
        EngineMetrics.attemptsStarted: "Attempts that took a node group, by pool.",
        EngineMetrics.attemptsEnded: "Attempts that ended, by pool and result (success or the failure category).",
        EngineMetrics.queueWait: "Seconds a task waited ready in the queue before its attempt took a node group.",
        EngineMetrics.runTime: "Seconds from an attempt's launch to its end.",
        EngineMetrics.phaseDuration: "Seconds from one step of an attempt to the next, by the step reached.",
        EngineMetrics.schedulingPass: "Seconds one scheduling pass of a pool's controller took (its decision latency).",
        EngineMetrics.storeWrite: "Seconds a write transaction to the state database took, waiting for SQLite's writer included.",
        RequestMetricNames.requests: "API requests answered, by route, method and status.",
        RequestMetricNames.duration: "Seconds the API took to answer, by route, method and status.",
        "cohort_jobs": "Stored jobs by state.",
        "cohort_nodes": "Nodes by pool and state (running: with a task now).",
        "cohort_slots_used": "Slots taken by running tasks, by pool.",
        "cohort_slots_capacity": "Slots of the nodes that may take work, by pool.",
        "cohort_tasks_waiting": "Tasks (or replicas) of running jobs waiting to start, by pool.",
        "cohort_tasks_running": "Tasks (or replicas) with an attempt under way, by pool.",
        "cohort_agent_heartbeat_age_seconds": "Seconds since a node's agent was last heard from, by pool and node.",
    ]

    static func helpText(_ name: String) -> String { help[name] ?? "Cohort metric \(name)." }

    /// Makes this registry the process's swift-metrics backend (once per process: `cohort serve`).
    public func bootstrap() {
        MetricsSystem.bootstrap(Factory(registry: registry))
    }

    /// The text a scrape gets: the gauges read now, then every family.
    func render(_ service: BatchService) -> ByteBuffer {
        if let jobs = try? service.store.jobCounts() {
            for state in JobState.allCases {
                registry.makeGauge(name: "cohort_jobs", labels: [("state", state.rawValue)], help: Self.helpText("cohort_jobs")).set(Double(jobs[state] ?? 0))
            }
        }
        for pool in service.occupancy() {
            let name = pool.pool.name
            var nodes: [NodeState: Int] = [:]
            for (index, node) in pool.pool.nodes.enumerated() {
                let busy = index < pool.usedSlotsByNode.count && pool.usedSlotsByNode[index] > 0
                nodes[node.state.acceptsWork && busy ? .running : node.state == .running ? .idle : node.state, default: 0] += 1
            }
            for state in NodeState.allCases {
                gauge("cohort_nodes", [("pool", name), ("state", state.rawValue)]).set(Double(nodes[state] ?? 0))
            }
            gauge("cohort_slots_used", [("pool", name)]).set(Double(pool.usedSlots))
            gauge("cohort_slots_capacity", [("pool", name)]).set(Double(pool.totalSlots))
            gauge("cohort_tasks_waiting", [("pool", name)]).set(Double(pool.waiting))
            gauge("cohort_tasks_running", [("pool", name)]).set(Double(pool.running))
            for (node, seconds) in pool.agentSilence {
                gauge("cohort_agent_heartbeat_age_seconds", [("pool", name), ("node", node)]).set(seconds)
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(registry.internalBufferCapacity())
        registry.emit(into: &bytes)
        return ByteBuffer(bytes: bytes)
    }

    private func gauge(_ name: String, _ labels: [(String, String)]) -> Prometheus.Gauge {
        registry.makeGauge(name: name, labels: labels, help: Self.helpText(name))
    }

    /// swift-metrics' handlers as this registry's families, each with its help text and,
    /// for timers, its buckets (the engine's long ones for waits and runs).
    struct Factory: MetricsFactory {
        let registry: PrometheusCollectorRegistry

        static func valid(_ name: String) -> String {
            String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") ? $0 : "_" })
        }

        static func valid(_ labels: [(String, String)]) -> [(String, String)] {
            labels.map { (String(valid($0.0).replacingOccurrences(of: ":", with: "_")), $0.1) }
        }

        func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
            registry.makeCounter(name: Self.valid(label), labels: Self.valid(dimensions), help: helpText(label))
        }

        func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
            guard aggregate else { return registry.makeGauge(name: Self.valid(label), labels: Self.valid(dimensions), help: helpText(label)) }
            return registry.makeValueHistogram(name: Self.valid(label), labels: Self.valid(dimensions),
                                               buckets: EngineMetrics.shortBuckets, help: helpText(label))
        }

        func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
            let buckets = (EngineMetrics.bucketsByName[label] ?? EngineMetrics.shortBuckets).map { Duration.nanoseconds(Int64($0 * 1e9)) }
            return registry.makeDurationHistogram(name: Self.valid(label), labels: Self.valid(dimensions), buckets: buckets, help: helpText(label))
        }

        func destroyCounter(_ handler: CounterHandler) {}
        func destroyRecorder(_ handler: RecorderHandler) {}
        func destroyTimer(_ handler: TimerHandler) {}

        private func helpText(_ label: String) -> String { ServiceMetrics.helpText(label) }
    }
}

/// Counts and times every API request by route (the pattern, `/v1/jobs/{job}`, never the
/// raw path: one series per route, whatever ids are asked for), method and status,
/// whatever answered it (a 401 of the authentication too: it is outermost).
struct RequestMetrics<Context: RequestContext>: RouterMiddleware {

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        let status: HTTPResponse.Status
        let response: Response
        do {
            response = try await next(request, context)
            status = response.status
        } catch {
            let failed = (error as? any HTTPResponseError)?.status ?? .internalServerError
            record(request, context, failed, since: start)
            throw error
        }
        record(request, context, status, since: start)
        return response
    }

    private func record(_ request: Request, _ context: Context, _ status: HTTPResponse.Status, since start: UInt64) {
        let dimensions = [("route", context.endpointPath ?? "unmatched"), ("method", request.method.rawValue), ("status", "\(status.code)")]
        Counter(label: RequestMetricNames.requests, dimensions: dimensions).increment()
        Timer(label: RequestMetricNames.duration, dimensions: dimensions, preferredDisplayUnit: .seconds)
            .recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
    }
}

enum RequestMetricNames {
    static let requests = "cohort_api_requests_total"
    static let duration = "cohort_api_request_seconds"
}
