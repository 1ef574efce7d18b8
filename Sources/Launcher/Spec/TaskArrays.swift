import Foundation

/// Task arrays and parameter sweeps: one task written, many run. An array (`array: 1-100%8`,
/// Slurm's `--array` syntax) or a sweep (`sweep: {mesh: [coarse, fine], re: [100, 1000]}`,
/// every combination) becomes one task per element, `ID[i]`, with `{index}` and each
/// parameter's `{name}` replaced in its command line, environment and file paths.
public enum TaskArrays {
    /// Elements one written task may become (Slurm's MaxArraySize defaults to 1,001; ten
    /// thousand Monte Carlo samples is an ordinary array here).
    public static let maximumElements = 100_000
    /// The largest index (Slurm's is MaxArraySize − 1; indices here need not be dense).
    public static let maximumIndex = 10_000_000

    /// An array's indices in the order written, and its throttle (`%N`).
    public struct Indices: Equatable, Sendable {
        public var values: [Int]
        public var throttle: Int?
    }

    /// Reads Slurm's array syntax: comma-separated indices and ranges `A-B` with an optional
    /// step `:S`, then an optional `%N` (at most N elements at once). Nil with why.
    public static func indices(_ text: String) -> Result<Indices, ArrayError> {
        var body = Substring(text.trimmingWhitespace())
        var throttle: Int?
        if let percent = body.firstIndex(of: "%") {
            let limit = body[body.index(after: percent)...]
            guard let value = Int(limit), value >= 1 else { return .failure(ArrayError("the throttle after % must be a whole number ≥ 1, found '\(limit.prefix(20))'")) }
            throttle = value
            body = body[..<percent]
        }
        guard !body.isEmpty else { return .failure(ArrayError("no indices given (e.g. 1-100, 0,6,16-32 or 0-15:4)")) }
        var values: [Int] = []
        var seen = Set<Int>()
        for part in body.split(separator: ",", omittingEmptySubsequences: false) {
            let piece = part.trimmingCharacters(in: .whitespaces)
            let stepParts = piece.split(separator: ":", omittingEmptySubsequences: false)
            guard stepParts.count <= 2 else { return .failure(ArrayError("'\(piece.prefix(40))' has more than one step")) }
            var step = 1
            if stepParts.count == 2 {
                guard let value = Int(stepParts[1]), value >= 1 else { return .failure(ArrayError("the step in '\(piece.prefix(40))' must be a whole number ≥ 1")) }
                step = value
            }
            let ends = stepParts[0].split(separator: "-", omittingEmptySubsequences: false)
            guard ends.count <= 2, let low = Int(ends[0]), let high = ends.count == 2 ? Int(ends[1]) : low, low >= 0 else {
                return .failure(ArrayError("'\(piece.prefix(40))' is not an index or a range A-B of whole numbers ≥ 0"))
            }
            guard low <= high else { return .failure(ArrayError("the range '\(piece.prefix(40))' ends before it starts")) }
            guard high <= maximumIndex else { return .failure(ArrayError("index \(high) is above the largest allowed, \(maximumIndex)")) }
            guard step == 1 || ends.count == 2 else { return .failure(ArrayError("a step needs a range: '\(piece.prefix(40))'")) }
            guard (high - low) / step + 1 + values.count <= maximumElements else {
                return .failure(ArrayError("more than \(maximumElements) elements"))
            }
            for index in stride(from: low, through: high, by: step) {
                guard seen.insert(index).inserted else { return .failure(ArrayError("index \(index) is given twice")) }
                values.append(index)
            }
        }
        return .success(Indices(values: values, throttle: throttle))
    }

    public struct ArrayError: Error, Equatable, CustomStringConvertible {
        public var message: String
        init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// Every combination of the parameters' values, the first parameter varying slowest.
    public static func combinations(_ parameters: [(name: String, values: [String])]) -> [[(name: String, value: String)]] {
        var result: [[(name: String, value: String)]] = [[]]
        for parameter in parameters {
            result = result.flatMap { prefix in parameter.values.map { prefix + [(parameter.name, $0)] } }
        }
        return result
    }

    /// One task per element: `ID[index]`, its words and paths substituted, and which element
    /// it is recorded on it (for its environment and its array's throttle).
    public static func expand(_ task: TaskSpec, elements: [(index: Int, parameters: [(name: String, value: String)])], throttle: Int?) -> [TaskSpec] {
        elements.map { element in
            var values = ["index": String(element.index)]
            for parameter in element.parameters { values[parameter.name] = parameter.value }
            func fill(_ text: String) -> String { substitute(text, values) }
            var copy = task
            copy.id = "\(task.id)[\(element.index)]"
            copy.commandLine = task.commandLine.map(fill)
            copy.environment = task.environment.mapValues(fill)
            copy.multiInstance?.coordinationCommandLine = task.multiInstance?.coordinationCommandLine?.map(fill)
            copy.workingDirectory = task.workingDirectory.map(fill)
            copy.outputFiles = task.outputFiles?.map { file in
                var file = file
                file.filePattern = fill(file.filePattern)
                file.path = file.path.map(fill)
                return file
            }
            copy.resourceFiles = task.resourceFiles?.map { file in
                var file = file
                file.filePath = file.filePath.map(fill)
                file.blobPrefix = file.blobPrefix.map(fill)
                return file
            }
            copy.array = ArrayElement(task: task.id, index: element.index, count: elements.count, throttle: throttle,
                                      parameters: element.parameters.isEmpty ? nil : element.parameters.map { [$0.name, $0.value] })
            return copy
        }
    }

    /// `text` with every `{name}` whose name is in `values` replaced; other braces (a shell's
    /// `${HOME}`, awk's `{print $1}`) stay as they are.
    public static func substitute(_ text: String, _ values: [String: String]) -> String {
        guard text.contains("{") else { return text }
        var result = ""
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            result += rest[..<open]
            let after = rest[rest.index(after: open)...]
            if let close = after.firstIndex(of: "}"), let value = values[String(after[..<close])] {
                result += value
                rest = after[after.index(after: close)...]
            } else {
                result += "{"
                rest = after
            }
        }
        return result + rest
    }
}

/// Which element of an array or sweep a task is.
public struct ArrayElement: Codable, Sendable, Equatable {
    /// The id the task was written with (`pi` for `pi[3]`).
    public var task: String
    public var index: Int
    /// How many elements the array has.
    public var count: Int
    /// At most this many of its elements run (or wait to be placed) at once.
    public var throttle: Int?
    /// A sweep's parameters, `[name, value]` in the order written.
    public var parameters: [[String]]?

    /// The variables its tasks get: the index and count, and each parameter by its name.
    public var variables: [String: String] {
        var v = ["COHORT_ARRAY_INDEX": String(index), "COHORT_ARRAY_COUNT": String(count), "COHORT_ARRAY_TASK_ID": task]
        for pair in parameters ?? [] where pair.count == 2 { v[pair[0]] = pair[1] }
        return v
    }
}
