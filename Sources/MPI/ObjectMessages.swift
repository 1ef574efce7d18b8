import FoundationEssentials

// Messages of any Codable value (MPI-4.1 has none; mpi4py's lowercase send/recv pickle
// objects): a struct of results, a dictionary of parameters, an enum of work items — sent
// as a binary property list in MPI_BYTEs, received without knowing its size (probe, then
// receive exactly that message). Use the typed array calls for numbers in bulk: they move
// the values themselves, with no encoding.

/// A value that did not arrive as the type asked for.
public struct ObjectMessageError: Error, CustomStringConvertible {
    public var description: String
}

extension Communicator {
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = PropertyListEncoder()
        encoder.outputFormat = .binary
        // A property list's root must be a container: one-element array around any value.
        return Array(try encoder.encode([value]))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], from source: Int) throws -> T {
        do {
            return try PropertyListDecoder().decode([T].self, from: Data(bytes))[0]
        } catch {
            throw ObjectMessageError(description: "a message from rank \(source) is not a \(T.self) (\(bytes.count) bytes): \(error)")
        }
    }

    /// Sends any Codable value to `destination`.
    public func send<T: Encodable>(object: T, to destination: Int, tag: Int = 0) throws {
        try send(Self.encode(object), to: destination, tag: tag)
    }

    /// Receives a value sent with `send(object:)`, and where it came from.
    public func receiveObject<T: Decodable>(_ type: T.Type = T.self, from source: Int = Communicator.anySource,
                                            tag: Int = Communicator.anyTag) throws -> (object: T, status: Status) {
        let (bytes, status) = try receiveArray(of: UInt8.self, from: source, tag: tag)
        return (try Self.decode(type, bytes, from: status.source), status)
    }

    /// `root`'s `object` on every process (others pass nil).
    public func broadcast<T: Codable>(object: T?, root: Int = 0) throws -> T {
        var bytes: [UInt8] = []
        if rank == root {
            guard let object else { throw ObjectMessageError(description: "broadcast(object:): the root (rank \(root)) passed nil") }
            bytes = try Self.encode(object)
        }
        let count = try broadcast(bytes.count, root: root)
        if rank != root { bytes = [UInt8](repeating: 0, count: count) }
        try broadcast(&bytes, root: root)
        return try Self.decode(T.self, bytes, from: root)
    }

    /// Every process's `object` at `root`, in rank order; nil elsewhere.
    public func gather<T: Codable>(object: T, root: Int = 0) throws -> [T]? {
        guard let all = try gatherv(Self.encode(object), root: root) else { return nil }
        return try all.enumerated().map { try Self.decode(T.self, $0.element, from: $0.offset) }
    }

    /// Every process's `object` on every process, in rank order.
    public func allGather<T: Codable>(object: T) throws -> [T] {
        try allGatherv(Self.encode(object)).enumerated().map { try Self.decode(T.self, $0.element, from: $0.offset) }
    }

    /// `objects[i]` of `root` (one per process; others pass nil) to process i.
    public func scatter<T: Codable>(objects: [T]?, root: Int = 0) throws -> T {
        var chunks: [[UInt8]]?
        if rank == root {
            guard let objects, objects.count == size else {
                throw ObjectMessageError(description: "scatter(objects:): the root must pass one object per rank (\(size)), not \(objects?.count ?? 0)")
            }
            chunks = try objects.map { try Self.encode($0) }
        }
        return try Self.decode(T.self, try scatterv(chunks, root: root), from: root)
    }
}
