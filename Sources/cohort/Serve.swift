import ArgumentParser
import Foundation
import Launcher
#if canImport(Glibc)
import Glibc
#endif

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Queue a job file for `cohort serve`; prints the job's id.")
    @Argument(help: "A job file (YAML or JSON).") var file: String
    @Option(help: "The pool to run on (default: the job file's).") var pool: String?

    func run() throws {
        var job: JobSpec
        do { job = try JobFile.load(path: file) } catch { throw Exit.badInput(error) }
        if let pool { job.pool = pool }
        let definition: Pool
        do { definition = try PoolStore(stateDirectory: PoolStore.defaultStateDirectory).load(job.pool) } catch { throw Exit.badInput(error) }
        // The same up-front check as `cohort run`: what can never fit is refused now.
        let check: JobRunner
        do {
            check = try JobRunner(job: job, pool: definition, settings: ExecutionSettings(workDirectory: "/tmp", cohortExecutable: ExecutionSettings.currentExecutable))
        } catch {
            throw Exit.badInput(error)
        }
        let id: String
        do { id = try Stored.jobs().submit(job, units: check.unitList) } catch let error as ExitCode { throw error } catch { throw Exit.badInput(error) }
        print(id)
    }
}

/// The batch service, for now without its HTTP API: takes queued jobs from the store and
/// runs them, one runner (one allocator) per pool, so jobs share a pool's slots, higher
/// priorities first. SIGTERM or Ctrl-C: takes no more jobs, lets the ones it took finish.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run queued jobs (cohort submit) as they come.")
    @Option(help: "Seconds between looks at the queue.") var poll: Double = 0.2

    final class State: @unchecked Sendable {
        let lock = NSLock()
        var stopping = false
        var recorders: [String: JobStore.Recorder] = [:]
        var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }
    }

    func run() throws {
        let jobs = try Stored.jobs()
        let pools = PoolStore(stateDirectory: PoolStore.defaultStateDirectory)
        let state = State()
        var runners: [String: JobRunner] = [:]
        var threads: [Thread] = []
        let finished = DispatchGroup()
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                state.lock.lock(); state.stopping = true; state.lock.unlock()
                log("stopping: no new jobs; the running ones finish")
            }
            source.resume()
            sources.append(source)
        }
        log("serving the queue in \(jobs.path) (pid \(getpid()))")
        while !state.isStopping {
            let claimed: [JobSpec]
            do { claimed = try jobs.claimActive() } catch { log("cannot read the queue: \(error)"); usleep(useconds_t(poll * 1e6)); continue }
            for job in claimed {
                do {
                    let runner = try runners[job.pool] ?? makeRunner(job.pool, pools: pools, jobs: jobs, state: state, finished: finished, threads: &threads)
                    runners[job.pool] = runner
                    state.lock.lock(); state.recorders[job.id] = JobStore.Recorder(store: jobs, jobId: job.id); state.lock.unlock()
                    try runner.add(job)
                    log("job \(job.id) started on pool \(job.pool)")
                } catch {
                    log("job \(job.id) rejected: \(error)")
                    try? jobs.reject(jobId: job.id, reason: "\(error)")
                }
            }
            usleep(useconds_t(poll * 1e6))
        }
        finished.wait()  // every runner has finished what it took
        sources.forEach { $0.cancel() }
        log("stopped")
    }

    func makeRunner(_ name: String, pools: PoolStore, jobs: JobStore, state: State, finished: DispatchGroup, threads: inout [Thread]) throws -> JobRunner {
        let pool = try pools.load(name)
        let settings = ExecutionSettings(workDirectory: "\(PoolStore.defaultStateDirectory)/work", cohortExecutable: ExecutionSettings.currentExecutable,
                                         log: { log($0) })
        let runner = JobRunner(pool: pool, settings: settings)
        runner.onAttemptFinished = { jobId, task, replica, attempt, taskState in
            state.lock.lock(); let recorder = state.recorders[jobId]; state.lock.unlock()
            recorder?.add(task, replica, attempt, taskState)
        }
        runner.onJobFinished = { run in
            state.lock.lock(); let recorder = state.recorders.removeValue(forKey: run.jobId); state.lock.unlock()
            recorder?.drain()
            try? jobs.finish(run)
            let (ok, failed) = run.counts
            log("job \(run.jobId) finished: \(ok) succeeded, \(failed) failed")
        }
        if pools.isStored(name) {
            runner.onNodeChange = { node in
                try? pools.update(name) { pool in
                    if let index = pool.nodes.firstIndex(where: { $0.id == node.id }) { pool.nodes[index] = node }
                }
            }
            runner.refreshNodes = { try? pools.load(name).nodes }
        }
        finished.enter()
        let thread = Thread {
            runner.serve(until: { state.isStopping })
            finished.leave()
        }
        thread.start()
        threads.append(thread)
        return runner
    }
}

func log(_ message: String) {
    let stamp = ISO8601DateFormatter().string(from: Date())
    FileHandle.standardError.write(Data("\(stamp) cohort serve: \(message)\n".utf8))
}
