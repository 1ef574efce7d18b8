/// Page-aligned buffers, as OSU's (and the C twins') are, so that Swift and C move the same
/// bytes from the same alignment and the comparison measures the binding alone.
extension OSU {
    public static func buffer<T: BitwiseCopyable>(of _: T.Type, count: Int, filledWith value: T) -> UnsafeMutableBufferPointer<T> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count * MemoryLayout<T>.stride), alignment: 4096)
        let typed = raw.bindMemory(to: T.self, capacity: count)
        typed.initialize(repeating: value, count: count)
        return UnsafeMutableBufferPointer(start: typed, count: count)
    }
}
