import CVerbs

/// Asks libibverbs whether this machine has an RDMA device with an active port. No device
/// (or no verbs provider at all, as on most laptops and in containers) is "no", not a crash.
public enum RDMAProbe {
    public struct Device: Sendable, Equatable, Codable {
        public var name: String
        public var activePorts: [Int]
    }

    /// Every verbs device here and its active ports.
    public static func localDevices() -> [Device] {
        var count: Int32 = 0
        guard let list = ibv_get_device_list(&count) else { return [] }
        defer { ibv_free_device_list(list) }
        var devices: [Device] = []
        for index in 0..<Int(count) {
            guard let device = list[index] else { continue }
            let name = ibv_get_device_name(device).map { String(cString: $0) } ?? "device\(index)"
            var active: [Int] = []
            if let context = ibv_open_device(device) {
                let ports = cverbs_port_count(context)
                if ports > 0 {
                    for port in 1...ports {
                        var attributes = ibv_port_attr()
                        if cverbs_query_port(context, UInt8(port), &attributes) == 0, cverbs_port_is_active(&attributes) != 0 {
                            active.append(Int(port))
                        }
                    }
                }
                ibv_close_device(context)
            }
            devices.append(Device(name: name, activePorts: active))
        }
        return devices
    }

    /// Whether this machine can do RDMA now.
    public static var localHasActivePort: Bool { localDevices().contains { !$0.activePorts.isEmpty } }

    /// The command that answers the same question on a remote node: it prints the number of
    /// active ports (0 where ibv_devinfo or a device is missing).
    static let remoteCommand = ["sh", "-c", "ibv_devinfo 2>/dev/null | grep -c PORT_ACTIVE || true"]
}
