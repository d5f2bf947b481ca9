import VigilCore

/// The NFS client's RPC statistics from `/proc/net/rpc/nfs`: packets and connections, RPCs and their
/// retransmissions, and the calls of each procedure of NFS versions 2, 3 and 4. Without the NFS client
/// module there is no data.
struct NFSCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "nfs",
        enabledByDefault: true,
        help: "NFS client RPC statistics from /proc/net/rpc/nfs"
    ) { setup in
        NFSCollector(file: KeptOpenFile(setup.paths.proc("net/rpc/nfs")))
    }

    let file: KeptOpenFile

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        guard let bytes = try context.reader.readIfPresent(self.file) else {
            throw CollectorError.noData("\(self.file.path) does not exist (no NFS client)")
        }
        let statistics = parseNFSClientStatistics(bytes)
        for line in statistics.broken { context.recordFailure("\(self.file.path): unexpected line \"\(line)\"") }
        if let network = statistics.network {
            writer.family(connectionsFamily)
            writer.sample(Double(network[2]))
            writer.family(packetsFamily)
            writer.sample(Double(network[1]), ("protocol", "tcp"))
            writer.sample(Double(network[0]), ("protocol", "udp"))
        }
        if !statistics.procedures.isEmpty {
            writer.family(requestsFamily)
            for (version, calls) in statistics.procedures.sorted(by: { $0.key < $1.key }) {
                for (method, count) in zip(nfsProcedures[version]!, calls) {
                    writer.sample(Double(count), ("method", method), ("proto", version))
                }
            }
        }
        if let rpc = statistics.rpc {
            writer.family(authenticationRefreshesFamily)
            writer.sample(Double(rpc[2]))
            writer.family(retransmissionsFamily)
            writer.sample(Double(rpc[1]))
            writer.family(rpcsFamily)
            writer.sample(Double(rpc[0]))
        }
    }
}

/// What `/proc/net/rpc/nfs` says, as node_exporter (through prometheus/procfs) reads it: a line the
/// kernel leaves out (`proc2` without NFSv2 support) counts as zeros; a line that cannot be read loses
/// its series and is listed in `broken`; lines of other kinds are ignored.
struct NFSClientStatistics {
    /// Packets over UDP, packets over TCP, TCP connections.
    var network: [UInt64]? = [0, 0, 0]
    /// RPCs, retransmissions, authentication refreshes.
    var rpc: [UInt64]? = [0, 0, 0]
    /// The calls of each procedure of each version ("2", "3", "4"), in the order of `nfsProcedures`.
    var procedures = nfsProcedures.mapValues { [UInt64](repeating: 0, count: $0.count) }
    var broken: [String] = []

    /// Takes one line's numbers (nil when some field is not one); false when they are not what a line
    /// of its kind holds.
    mutating func take(_ key: String, _ values: [UInt64]?) -> Bool {
        switch key {
        case "net":
            // Packets in all, then the three kept.
            self.network = values.flatMap { $0.count == 4 ? Array($0.dropFirst()) : nil }
            return self.network != nil
        case "rpc":
            self.rpc = values.flatMap { $0.count == 3 ? $0 : nil }
            return self.rpc != nil
        case "proc2", "proc3", "proc4":
            // The number of procedures, then their calls: at least the known ones, but for version 4,
            // of which older kernels wrote fewer (the rest count as zeros).
            let version = String(key.dropFirst("proc".count))
            let known = nfsProcedures[version]!.count
            guard let values, let count = values.first, Int(count) == values.count - 1, version == "4" || count >= known
            else {
                self.procedures[version] = nil
                return false
            }
            let calls = values.dropFirst().prefix(known)
            self.procedures[version] = Array(calls) + Array(repeating: 0, count: known - calls.count)
            return true
        default:
            return true
        }
    }
}

func parseNFSClientStatistics(_ bytes: ArraySlice<UInt8>) -> NFSClientStatistics {
    var statistics = NFSClientStatistics()
    for line in bytes.lines where !line.trimmed().isEmpty {
        var fields = line.fields
        let key = fields.next()!.string
        let numbers = fields.map { $0.parseUInt64() }
        let values = numbers.allSatisfy { $0 != nil } && !numbers.isEmpty ? numbers.map { $0! } : nil
        if !statistics.take(key, values) { statistics.broken.append(line.string) }
    }
    return statistics
}

/// node_exporter's `method` label for each procedure, in the kernel's order (prometheus/procfs names).
let nfsProcedures: [String: [String]] = [
    "2": [
        "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write", "Create", "Remove",
        "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
    ],
    "3": [
        "Null", "GetAttr", "SetAttr", "Lookup", "Access", "ReadLink", "Read", "Write", "Create", "MkDir", "SymLink",
        "MkNod", "Remove", "RmDir", "Rename", "Link", "ReadDir", "ReadDirPlus", "FsStat", "FsInfo", "PathConf",
        "Commit",
    ],
    "4": [
        "Null", "Read", "Write", "Commit", "Open", "OpenConfirm", "OpenNoattr", "OpenDowngrade", "Close", "Setattr",
        "FsInfo", "Renew", "SetClientID", "SetClientIDConfirm", "Lock", "Lockt", "Locku", "Access", "Getattr",
        "Lookup", "LookupRoot", "Remove", "Rename", "Link", "Symlink", "Create", "Pathconf", "StatFs", "ReadLink",
        "ReadDir", "ServerCaps", "DelegReturn", "GetACL", "SetACL", "FsLocations", "ReleaseLockowner", "Secinfo",
        "FsidPresent", "ExchangeID", "CreateSession", "DestroySession", "Sequence", "GetLeaseTime",
        "ReclaimComplete", "LayoutGet", "GetDeviceInfo", "LayoutCommit", "LayoutReturn", "SecinfoNoName",
        "TestStateID", "FreeStateID", "GetDeviceList", "BindConnToSession", "DestroyClientID", "Seek", "Allocate",
        "DeAllocate", "LayoutStats", "Clone",
    ],
]

private let connectionsFamily = MetricFamily(
    "node_nfs_connections_total",
    help: "Total number of NFSd TCP connections.",
    type: .counter
)
private let packetsFamily = MetricFamily(
    "node_nfs_packets_total",
    help: "Total NFSd network packets (sent+received) by protocol type.",
    type: .counter
)
private let requestsFamily = MetricFamily(
    "node_nfs_requests_total",
    help: "Number of NFS procedures invoked.",
    type: .counter
)
private let authenticationRefreshesFamily = MetricFamily(
    "node_nfs_rpc_authentication_refreshes_total",
    help: "Number of RPC authentication refreshes performed.",
    type: .counter
)
private let retransmissionsFamily = MetricFamily(
    "node_nfs_rpc_retransmissions_total",
    help: "Number of RPC transmissions performed.",
    type: .counter
)
private let rpcsFamily = MetricFamily("node_nfs_rpcs_total", help: "Total number of RPCs performed.", type: .counter)
