import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest
@testable import Launcher

/// `/metrics` of a real `cohort serve`, checked by Prometheus's own tools: `promtool check
/// metrics` on the text, and a real Prometheus (Debian's package, installed by
/// scripts/setup.sh) scraping the server with its token and answering queries. Missing
/// tools fail the test: they are installed on CI.
final class MetricsTests: XCTestCase {
    /// A port free now on 127.0.0.1 (the kernel's pick, let go at once).
    static func freePort() -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 ? getsockname(descriptor, $0, &length) : -1 }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// GET `url` without a token; the body, or nil if nothing answered.
    static func get(_ url: String) -> String? {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var body: String?
        URLSession.shared.dataTask(with: URL(string: url)!) { data, response, _ in
            if (response as? HTTPURLResponse)?.statusCode == 200, let data { body = String(decoding: data, as: UTF8.self) }
            done.signal()
        }.resume()
        done.wait()
        return body
    }

    /// A PromQL query's single value (a scalar or the first sample of a vector).
    static func query(_ prometheus: String, _ expression: String) -> String? {
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
        guard let text = get("\(prometheus)/api/v1/query?query=\(encoded)"),
              let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
              let value = result.first?["value"] as? [Any], value.count == 2 else { return nil }
        return value[1] as? String
    }

    func testPrometheusScrapesTheServersMetricsAndPromtoolAcceptsThem() throws {
        for tool in ["prometheus", "promtool"] {
            XCTAssertEqual(Harness.shell(["sh", "-c", "command -v \(tool)"]).status, 0, "\(tool) is not installed: run scripts/setup.sh")
        }
        let home = Harness.temporaryDirectory()
        let server = try ServerProcess(home: home)
        try server.waitUntilListening()
        defer { _ = server.stop() }
        let job = "id: measured\ntasks:\n  - { id: a, commandLine: 'true' }\n  - { id: b, commandLine: 'true' }\n  - { id: c, commandLine: \"sh -c 'exit 3'\" }\n"
        XCTAssertEqual(server.request("POST", "/v1/jobs", body: job).status, 201)
        _ = try Harness.waitCompleted("measured", home: home)

        XCTAssertEqual(server.request("GET", "/metrics", token: .some(nil)).status, 401, "the API's token guards the metrics too")
        let answer = server.request("GET", "/metrics")
        XCTAssertEqual(answer.status, 200, answer.text)
        XCTAssertTrue(answer.headers["Content-Type"]?.hasPrefix("text/plain; version=0.0.4") == true, "\(answer.headers)")
        let text = answer.text
        for line in [#"cohort_attempts_ended_total{pool="local",result="success"} 2"#,
                     #"cohort_attempts_ended_total{pool="local",result="exitCode"} 1"#,
                     #"cohort_attempts_started_total{pool="local"} 3"#,
                     #"cohort_jobs{state="completed"} 1.0"#,
                     #"cohort_nodes{pool="local",state="idle"} 4.0"#,
                     #"cohort_slots_capacity{pool="local"} 8.0"#,
                     #"cohort_slots_used{pool="local"} 0.0"#,
                     #"cohort_api_requests_total{route="/v1/jobs",method="POST",status="201"} 1"#,
                     #"cohort_api_requests_total{route="/metrics",method="GET",status="401"} 1"#] {
            XCTAssertTrue(text.contains(line + "\n"), "\(line) in:\n\(text)")
        }
        for family in ["cohort_task_queue_wait_seconds", "cohort_attempt_run_seconds", "cohort_attempt_phase_seconds", "cohort_scheduling_pass_seconds",
                       "cohort_store_write_seconds", "cohort_api_request_seconds"] {
            XCTAssertTrue(text.contains("# TYPE \(family) histogram\n"), "\(family) in:\n\(text)")
        }
        XCTAssertTrue(text.contains(#"cohort_attempt_run_seconds_count{pool="local"} 3"#), text)
        XCTAssertFalse(text.contains("/v1/jobs/measured"), "routes are patterns, never the ids asked for")

        let file = "\(home)/metrics.txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let check = Harness.shell(["sh", "-c", "promtool check metrics < \"$0\"", file])
        XCTAssertEqual(check.status, 0, "promtool check metrics: \(check.output)")

        // A real Prometheus scrapes it every second, with the token from the state directory.
        let port = Self.freePort()
        let target = server.url.replacingOccurrences(of: "http://", with: "")
        // The README's scrape config, pointed at this server.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = Harness.read(root.appendingPathComponent("README.md").path)
        let start = try XCTUnwrap(readme.range(of: "```yaml\nscrape_configs:"), "the README shows a scrape config")
        let end = try XCTUnwrap(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        let scrape = String(readme[readme.index(start.lowerBound, offsetBy: 8)..<end.lowerBound])
            .replacingOccurrences(of: "/root/.cohort/api-token", with: "\(home)/api-token").replacingOccurrences(of: "127.0.0.1:8765", with: target)
        let config = "global: { scrape_interval: 1s, scrape_timeout: 1s }\n" + scrape
        try config.write(toFile: "\(home)/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheus = try ChildProcess(["prometheus", "--config.file=\(home)/prometheus.yml", "--storage.tsdb.path=\(home)/tsdb",
                                           "--web.listen-address=127.0.0.1:\(port)"],
                                          environment: ["PATH": "/usr/bin:/bin:/usr/sbin:/sbin"], directory: home,
                                          stdout: "\(home)/prometheus.log", stderr: "\(home)/prometheus.log")
        defer { prometheus.signalGroup(SIGKILL); _ = prometheus.wait() }
        let url = "http://127.0.0.1:\(port)"
        var up: String?, ended: String?
        let deadline = Date() + 60
        while Date() < deadline {
            up = Self.query(url, #"up{job="cohort"}"#)
            ended = Self.query(url, "sum(cohort_attempts_ended_total)")
            if up == "1" && ended == "3" { break }
            usleep(250_000)
        }
        XCTAssertEqual(up, "1", "Prometheus scraped the server: \(Harness.read("\(home)/prometheus.log").suffix(2000))")
        XCTAssertEqual(ended, "3", "the attempts' ends, queried from Prometheus")
        XCTAssertEqual(Self.query(url, #"cohort_jobs{state="completed"}"#), "1")
    }
}
