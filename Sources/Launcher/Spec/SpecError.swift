/// A problem in a job file or job options, naming the file, line, column and field.
public struct SpecError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var line: Int?
    public var column: Int?
    /// The field's path, e.g. `tasks[1].multiInstance.instances`.
    public var field: String
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, field: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    public var description: String {
        let place = [file, line.map(String.init), column.map(String.init)].compactMap { $0 }.joined(separator: ":")
        return field.isEmpty ? "\(place): \(message)" : "\(place): \(field): \(message)"
    }
}
