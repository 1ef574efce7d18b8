import API
import ArgumentParser
import Foundation
import Launcher

/// `cohort dashboard`: a link that logs a browser in to the running server's dashboard
/// (once, within five minutes), so nobody pastes the API token into a page.
struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Print a one-time link that opens the running server's web dashboard, logged in (a job's page if one is named).")

    @Argument(help: "Open this job's page instead of the overview.")
    var job: String?

    func validate() throws {
        if let job, job.isEmpty || job.count > 64 || !job.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            throw ValidationError("JOB must be 1-64 letters, digits, '-' or '_', found '\(job.prefix(80))'")
        }
    }

    func run() throws {
        guard let client = try Client.discover() else {
            throw Exit.badInput("no cohort serve runs for \(PoolStore.defaultStateDirectory): start one with `cohort serve` (or set COHORT_SERVER)")
        }
        let code = DashboardSessions(token: client.token).loginCode()
        let next = job.map { "&next=%2Fjobs%2F\($0)" } ?? ""
        print("\(client.base)/login?code=\(code)\(next)")
        FileHandle.standardError.write(Data("open it within \(Int(DashboardSessions.linkLifetime / 60)) minutes; it logs in once\n".utf8))
    }
}
