/// A syntax error in a hostfile, machinefile or hostlist, with where it is.
public struct HostfileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file's path, or a label such as `--hosts` for text from the command line.
    public var source: String
    /// 1-based line and column of the problem.
    public var line: Int
    public var column: Int
    public var message: String

    public init(source: String, line: Int, column: Int, message: String) {
        self.source = source
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(source):\(line):\(column): \(message)" }
}
