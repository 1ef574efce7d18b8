import CMPI
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A reduction operation (MPI-4.1 §6.9.2): a predefined one, or one made from a Swift
/// function with `Operation.custom`.
public struct Operation: @unchecked Sendable {
    /// The MPI handle.
    public let handle: MPI_Op
    @usableFromInline let user: UserFunctionBox?

    @inlinable init(_ handle: MPI_Op) { self.handle = handle; self.user = nil }
    init(handle: MPI_Op, user: UserFunctionBox) { self.handle = handle; self.user = user }

    @inlinable public static var sum: Operation { Operation(MPI_SUM) }
    @inlinable public static var product: Operation { Operation(MPI_PROD) }
    @inlinable public static var min: Operation { Operation(MPI_MIN) }
    @inlinable public static var max: Operation { Operation(MPI_MAX) }
    @inlinable public static var logicalAnd: Operation { Operation(MPI_LAND) }
    @inlinable public static var logicalOr: Operation { Operation(MPI_LOR) }
    @inlinable public static var logicalXor: Operation { Operation(MPI_LXOR) }
    @inlinable public static var bitwiseAnd: Operation { Operation(MPI_BAND) }
    @inlinable public static var bitwiseOr: Operation { Operation(MPI_BOR) }
    @inlinable public static var bitwiseXor: Operation { Operation(MPI_BXOR) }
    /// Minimum value and the lowest index holding it; use with `DoubleInt` and friends.
    @inlinable public static var minLoc: Operation { Operation(MPI_MINLOC) }
    /// Maximum value and the lowest index holding it.
    @inlinable public static var maxLoc: Operation { Operation(MPI_MAXLOC) }

    /// An operation from a Swift function `combine(incoming, accumulated) -> accumulated`
    /// over `T` (`MPI_Op_create`). It must be associative; say whether it is commutative.
    /// Usable with the blocking reductions (reduce, allReduce, scan, exScan, reduceScatter).
    public static func custom<T: MPIDatatype>(_: T.Type = T.self, commutative: Bool, _ combine: @escaping @Sendable (T, T) -> T) throws(MPIError) -> Operation {
        let box = TypedUserFunction<T>(combine)
        var op: MPI_Op?
        try check(MPI_Op_create(userFunctionTrampoline, commutative ? 1 : 0, &op))
        box.handle = op
        return Operation(handle: op!, user: box)
    }

    /// Runs `body` with this operation's Swift function reachable from MPI's callback.
    /// MPI's user-function signature carries no context, so the blocking reductions run the
    /// function on the calling thread and find it in a thread-local slot.
    @inlinable @inline(__always)
    func withActive<R>(_ body: () throws(MPIError) -> R) throws(MPIError) -> R {
        guard let user else { return try body() }
        return try user.activate(body)
    }
}

/// Holds a Swift reduction function for MPI's C callback; frees the MPI_Op with itself.
@usableFromInline
class UserFunctionBox: @unchecked Sendable {
    var handle: MPI_Op?

    func apply(_ input: UnsafeMutableRawPointer, _ accumulator: UnsafeMutableRawPointer, count: Int) {}

    @usableFromInline
    func activate<R>(_ body: () throws(MPIError) -> R) throws(MPIError) -> R {
        let key = UserFunctionSlot.key
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(key, previous) }
        return try body()
    }

    deinit {
        if handle != nil, isActive { _ = MPI_Op_free(&handle) }
    }
}

final class TypedUserFunction<T: MPIDatatype>: UserFunctionBox, @unchecked Sendable {
    let combine: @Sendable (T, T) -> T
    init(_ combine: @escaping @Sendable (T, T) -> T) { self.combine = combine }

    override func apply(_ input: UnsafeMutableRawPointer, _ accumulator: UnsafeMutableRawPointer, count: Int) {
        let incoming = input.bindMemory(to: T.self, capacity: count)
        let accumulated = accumulator.bindMemory(to: T.self, capacity: count)
        for i in 0..<count { accumulated[i] = combine(incoming[i], accumulated[i]) }
    }
}

enum UserFunctionSlot {
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()
}

/// The one C function MPI calls for every Swift-defined operation.
private let userFunctionTrampoline: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<MPI_Datatype?>?) -> Void = { input, accumulator, length, _ in
    guard let raw = pthread_getspecific(UserFunctionSlot.key), let input, let accumulator, let length else {
        fatalError("MPI called a Swift-defined operation outside a blocking reduction on the calling thread")
    }
    Unmanaged<UserFunctionBox>.fromOpaque(raw).takeUnretainedValue().apply(input, accumulator, count: Int(length.pointee))
}
