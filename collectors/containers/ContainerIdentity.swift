import VigilCore

/// The container runtimes (and machine managers) recognised from cgroup paths.
enum ContainerRuntime: Sendable, Equatable {
    case docker
    case containerd
    case crio
    case podman
    case nerdctl
    /// A bare 64-hex directory (cgroupfs driver): Kubernetes through containerd or Docker, or
    /// standalone containerd (`/<namespace>/<id>`).
    case unknown
    /// systemd-nspawn or another machine registered with systemd-machined.
    case machine
    case lxc
}

/// A container found in the cgroup tree.
struct ContainerRef: Sendable, Hashable {
    var runtime: ContainerRuntime
    /// The 64-hex id, or the machine name for machines and LXC.
    var id: String
    /// The Kubernetes pod UID (with dashes), when the container sits in a pod cgroup.
    var podUID: String?
    /// The parent directory of a bare id outside Kubernetes: standalone containerd names its
    /// namespace there (`/default/<id>`).
    var parentName: String?
}

/// What a cgroup directory is.
enum CgroupKind: Sendable, Equatable {
    /// The root of the hierarchy (`id="/"`), always reported, as cAdvisor does.
    case root
    case container(ContainerRef)
    /// A Kubernetes pod cgroup (`pod<uid>` or `kubepods-…-pod<uid_>.slice`).
    case pod(uid: String)
    /// Kubernetes' parents of pod cgroups: `kubepods` and its QoS classes.
    case kubepods
    /// Anything else: slices, services, sessions, runtime helpers.
    case other
}

/// Identifies a cgroup directory from its name and its parent (runtime cgroup layouts, reference §4):
/// from the leaf, strip `.scope`; match `(docker|cri-containerd|crio|libpod|nerdctl)-<64 hex>` or a
/// bare 64-hex id; `*-conmon-*` and everything unknown are `other`; pods come from `pod…` components
/// under a `kubepods` parent; machines from `machine-*.scope`, `systemd-nspawn@*.service` and LXC.
func identifyCgroup(name: String, parentName: String, parent: CgroupKind) -> CgroupKind {
    // Matched byte-wise on ASCII affixes: the walk identifies every directory at every scrape.
    let name = name[...]
    if name.endsWith(".slice") {
        let stem = name.droppingLast(6)
        if stem == "kubepods" || stem.endsWith("-kubepods") { return .kubepods }
        guard parent == .kubepods, stem.containsBytes("kubepods") else { return .other }
        let last = stem.utf8.lastIndex(of: UInt8(ascii: "-")).map { stem[stem.utf8.index(after: $0)...] } ?? stem
        if last.startsWith("pod"), let uid = podUID(last.droppingFirst(3), systemdEscaped: true) {
            return .pod(uid: uid)
        }
        // `kubepods-burstable.slice`, `kubepods-besteffort.slice`
        return .kubepods
    }
    if name.endsWith(".service") {
        if name.startsWith("systemd-nspawn@") {
            return .container(
                ContainerRef(runtime: .machine, id: unescapeUnitName(name.droppingFirst(15).droppingLast(8)))
            )
        }
        return .other
    }
    let isScope = name.endsWith(".scope")
    let stem = isScope ? name.droppingLast(6) : name
    let parentPod: String? = if case .pod(let uid) = parent { uid } else { nil }
    for (prefix, runtime) in runtimePrefixes where stem.startsWith(prefix) {
        let id = stem.droppingFirst(prefix.utf8CodeUnitCount)
        if isContainerID(id) { return .container(ContainerRef(runtime: runtime, id: String(id), podUID: parentPod)) }
    }
    if !isScope, isContainerID(stem) {
        let id = String(name)
        switch parent {
        case .pod: return .container(ContainerRef(runtime: .unknown, id: id, podUID: parentPod))
        default:
            switch parentName {
            case "docker": return .container(ContainerRef(runtime: .docker, id: id))
            case "libpod_parent": return .container(ContainerRef(runtime: .podman, id: id))
            default: return .container(ContainerRef(runtime: .unknown, id: id, parentName: parentName))
            }
        }
    }
    if isScope, stem.startsWith("machine-"), parentName == "machine.slice" {
        return .container(ContainerRef(runtime: .machine, id: unescapeUnitName(stem.droppingFirst(8))))
    }
    if name.startsWith("lxc.payload."), name.utf8.count > 12 {
        return .container(ContainerRef(runtime: .lxc, id: String(name.droppingFirst(12))))
    }
    if (parentName == "lxc" || parentName == "lxc.payload") && parent == .other && !isScope {
        return .container(ContainerRef(runtime: .lxc, id: String(name)))
    }
    if parent == .kubepods {
        if name.startsWith("pod"), let uid = podUID(name.droppingFirst(3), systemdEscaped: false) {
            return .pod(uid: uid)
        }
        if name == "burstable" || name == "besteffort" { return .kubepods }
    }
    if name == "kubepods" { return .kubepods }
    return .other
}

extension Substring {
    /// Byte-wise affix tests and slicing at byte offsets, for the ASCII affixes of cgroup names
    /// (`String.hasPrefix` and `dropFirst` work on Characters, which costs far more).
    fileprivate func startsWith(_ prefix: StaticString) -> Bool {
        prefix.withUTF8Buffer { self.utf8.starts(with: $0) }
    }

    fileprivate func endsWith(_ suffix: StaticString) -> Bool {
        suffix.withUTF8Buffer { suffix in
            let utf8 = self.utf8
            guard utf8.count >= suffix.count else { return false }
            return utf8[utf8.index(utf8.endIndex, offsetBy: -suffix.count)...].elementsEqual(suffix)
        }
    }

    fileprivate func containsBytes(_ text: StaticString) -> Bool {
        text.withUTF8Buffer { text in
            let utf8 = self.utf8
            var start = utf8.startIndex
            while utf8.distance(from: start, to: utf8.endIndex) >= text.count {
                if utf8[start...].starts(with: text) { return true }
                utf8.formIndex(after: &start)
            }
            return false
        }
    }

    fileprivate func droppingFirst(_ count: Int) -> Substring {
        Substring(self.utf8.dropFirst(count))
    }

    fileprivate func droppingLast(_ count: Int) -> Substring {
        Substring(self.utf8.dropLast(count))
    }
}

/// Identifies a whole cgroup path (`/kubepods/burstable/pod…/…`) by folding ``identifyCgroup`` over
/// its components, as the walk does.
func identifyCgroupPath(_ path: String) -> CgroupKind {
    var kind = CgroupKind.root
    var parentName = ""
    for component in path.split(separator: "/") {
        let name = String(component)
        kind = identifyCgroup(name: name, parentName: parentName, parent: kind)
        parentName = name
    }
    return kind
}

/// Whether the walk goes below a cgroup. Containers are leaves for vigil (their sub-cgroups belong
/// to them); services, mounts, sockets and non-container scopes cannot hold containers, except a
/// user's manager (`user@1000.service`, where rootless containers live). With `all`, every cgroup is
/// reported, so every directory is walked.
func shouldDescend(name: String, kind: CgroupKind, all: Bool) -> Bool {
    switch kind {
    case .container: return false
    case .root, .pod, .kubepods: return true
    case .other:
        if all { return true }
        let name = name[...]
        if name.endsWith(".service") { return name.startsWith("user@") }
        return
            !(name.endsWith(".scope") || name.endsWith(".mount") || name.endsWith(".socket")
            || name.endsWith(".swap") || name.startsWith("lxc.monitor"))
    }
}

private let runtimePrefixes: [(StaticString, ContainerRuntime)] = [
    ("docker-", .docker), ("cri-containerd-", .containerd), ("crio-", .crio), ("libpod-", .podman),
    ("nerdctl-", .nerdctl),
]

/// A container id: exactly 64 lowercase hex digits.
func isContainerID(_ text: Substring) -> Bool {
    let utf8 = text.utf8
    guard utf8.count == 64 else { return false }
    return utf8.allSatisfy {
        ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f"))
    }
}

/// A pod UID from its cgroup name: hex digits and dashes (UUIDs, or 32 hex digits for static pods);
/// the systemd driver writes `_` for `-`.
private func podUID(_ text: Substring, systemdEscaped: Bool) -> String? {
    guard !text.isEmpty else { return nil }
    var escaped = false
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "-"): continue
        case UInt8(ascii: "_") where systemdEscaped: escaped = true
        default: return nil
        }
    }
    guard escaped else { return String(text) }
    return String(decoding: text.utf8.map { $0 == UInt8(ascii: "_") ? UInt8(ascii: "-") : $0 }, as: UTF8.self)
}

/// Undoes systemd's unit-name escaping (`\x2d` → `-`).
func unescapeUnitName(_ text: Substring) -> String {
    guard text.contains("\\") else { return String(text) }
    var bytes: [UInt8] = []
    let utf8 = Array(text.utf8)
    var index = 0
    while index < utf8.count {
        if utf8[index] == UInt8(ascii: "\\"), index + 3 < utf8.count, utf8[index + 1] == UInt8(ascii: "x"),
            let value = utf8[(index + 2)...(index + 3)].parseHex()
        {
            bytes.append(UInt8(value))
            index += 4
        } else {
            bytes.append(utf8[index])
            index += 1
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
