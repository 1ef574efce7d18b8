import CMPI
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// A request dropped before it completed cannot let go of its buffer while MPI may still
// write it, so its deinit waits. When nothing will ever complete it — a receive nobody sends
// to, a send to this very process that nobody receives — that wait is a silent hang; this
// one says so on stderr after a while (`MPI_SWIFT_DROPPED_REQUEST_SECONDS`, default 10)
// and keeps waiting, so the hang points at its cause.

/// Waits for the requests of a deinit, telling stderr once if they are still pending
/// after the grace period. `what` names them in the message.
@usableFromInline
func waitForDropped(_ requests: inout [MPI_Request?], what: String) {
    var done: Int32 = 0
    guard MPI_Testall(Int32(requests.count), &requests, &done, nil) == MPI_SUCCESS, done == 0 else { return }
    let start = MPI_Wtime()
    var told = false
    var pause: useconds_t = 50
    while MPI_Testall(Int32(requests.count), &requests, &done, nil) == MPI_SUCCESS, done == 0 {
        if !told, MPI_Wtime() - start >= droppedRequestGrace {
            told = true
            var rank: Int32 = -1
            _ = MPI_Comm_rank(MPI_COMM_WORLD, &rank)
            let message = "import MPI: rank \(rank): \(what) dropped without wait() is still pending after \(Int(droppedRequestGrace)) s "
                + "(a receive nobody sends to, or a send nobody receives?); its buffer is kept until it completes, so this process waits\n"
            _ = message.withCString { write(2, $0, strlen($0)) }  // stderr, unbuffered
        }
        usleep(pause)
        pause = min(pause * 2, 1000)  // ≤ 1 ms between tests: MPI progresses while we test
    }
}

@usableFromInline
func waitForDropped(_ request: inout MPI_Request?, what: String) {
    var requests = [request]
    waitForDropped(&requests, what: what)
    request = requests[0]
}

/// Seconds a dropped request may wait before it is reported.
let droppedRequestGrace: Double = {
    guard let text = getenv("MPI_SWIFT_DROPPED_REQUEST_SECONDS"), let seconds = Double(String(cString: text)), seconds >= 0 else { return 10 }
    return seconds
}()
