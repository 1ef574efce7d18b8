import MPI

/// Collects failed expectations for one rank and reports them in one line per failure.
final class Checker {
    let group: String
    var checks = 0
    var failures: [String] = []

    init(group: String) { self.group = group }

    func expect(_ condition: @autoclosure () throws -> Bool, _ what: String, line: Int = #line) rethrows {
        checks += 1
        if try !condition() { failures.append("line \(line): \(what)") }
    }

    func expectEqual<T: Equatable>(_ actual: T, _ expected: T, _ what: String, line: Int = #line) {
        checks += 1
        if actual != expected { failures.append("line \(line): \(what): got \(actual), expected \(expected)") }
    }

    /// Expects `body` to throw an MPIError of `errorClass`.
    func expectThrows(_ errorClass: Int32, _ what: String, line: Int = #line, _ body: () throws -> Void) {
        checks += 1
        do {
            try body()
            failures.append("line \(line): \(what): did not throw")
        } catch let error as MPIError {
            if error.errorClass != errorClass {
                failures.append("line \(line): \(what): threw class \(error.errorClass) (\(error.message)), expected \(errorClass)")
            }
        } catch {
            failures.append("line \(line): \(what): threw \(error)")
        }
    }
}
