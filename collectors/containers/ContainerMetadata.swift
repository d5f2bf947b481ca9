import Synchronization
import VigilCore

/// What a runtime's state file says about a container: cAdvisor's `name` and `image`, and the
/// Kubernetes labels kubelet adds (`pod`, `namespace`, `container`).
struct ContainerMetadata: Sendable, Equatable {
    var name = ""
    var image = ""
    var pod = ""
    var namespace = ""
    var container = ""
    var podUID = ""
    /// A Kubernetes pod sandbox (pause container): the owner of the pod's network namespace.
    var isSandbox = false
    /// A Kubernetes application container: it shares the sandbox's network, so its network series
    /// would repeat the sandbox's (cAdvisor leaves them out too).
    var isPodContainer: Bool { !self.pod.isEmpty && !self.isSandbox }
}

/// Reads Docker's `config.v2.json`: `Name` (without its leading `/`), `Config.Image` and the
/// Kubernetes labels of `Config.Labels`.
func parseDockerConfig(_ bytes: ArraySlice<UInt8>) throws(JSONError) -> ContainerMetadata {
    var metadata = ContainerMetadata()
    var labels: [String: String] = [:]
    var reader = JSONReader(bytes)
    try reader.readObject { (key, reader) throws(JSONError) in
        switch key {
        case "Name":
            let name = try reader.readOptionalString() ?? ""
            metadata.name = name.hasPrefix("/") ? String(name.dropFirst()) : name
        case "Config":
            try reader.readObject { (key, reader) throws(JSONError) in
                switch key {
                case "Image": metadata.image = try reader.readOptionalString() ?? ""
                case "Labels":
                    if reader.peekByte() == UInt8(ascii: "{") {
                        labels = try reader.readStringMap()
                    } else {
                        try reader.skipValue()
                    }
                default: try reader.skipValue()
                }
            }
        default: try reader.skipValue()
        }
    }
    try reader.finish()
    metadata.pod = labels["io.kubernetes.pod.name"] ?? ""
    metadata.namespace = labels["io.kubernetes.pod.namespace"] ?? ""
    metadata.container = labels["io.kubernetes.container.name"] ?? ""
    metadata.podUID = labels["io.kubernetes.pod.uid"] ?? ""
    metadata.isSandbox = labels["io.kubernetes.docker.type"] == "podsandbox"
    return metadata
}

/// Reads the annotations of an OCI runtime spec (`config.json`) written by containerd's CRI plugin,
/// CRI-O or Podman.
func parseOCIConfig(_ bytes: ArraySlice<UInt8>) throws(JSONError) -> ContainerMetadata {
    var annotations: [String: String] = [:]
    var reader = JSONReader(bytes)
    try reader.readObject { (key, reader) throws(JSONError) in
        if key == "annotations", reader.peekByte() == UInt8(ascii: "{") {
            annotations = try reader.readStringMap()
        } else {
            try reader.skipValue()
        }
    }
    try reader.finish()
    var metadata = ContainerMetadata()
    if let type = annotations["io.kubernetes.cri.container-type"] {
        // containerd
        metadata.isSandbox = type == "sandbox"
        metadata.image = annotations["io.kubernetes.cri.image-name"] ?? ""
        metadata.pod = annotations["io.kubernetes.cri.sandbox-name"] ?? ""
        metadata.namespace = annotations["io.kubernetes.cri.sandbox-namespace"] ?? ""
        metadata.container = annotations["io.kubernetes.cri.container-name"] ?? ""
        metadata.podUID = annotations["io.kubernetes.cri.sandbox-uid"] ?? ""
        return metadata
    }
    // CRI-O (and Podman, which writes some of CRI-O's annotations): the Kubernetes labels are
    // annotations of their own, and also a JSON object in `io.kubernetes.cri-o.Labels`.
    var labels: [String: String] = [:]
    if let json = annotations["io.kubernetes.cri-o.Labels"] {
        var labelReader = JSONReader(ArraySlice(json.utf8))
        labels = (try? labelReader.readStringMap()) ?? [:]
    }
    func kubernetes(_ key: String) -> String { annotations[key] ?? labels[key] ?? "" }
    metadata.name = annotations["io.kubernetes.cri-o.Name"] ?? ""
    metadata.image = annotations["io.kubernetes.cri-o.ImageName"] ?? ""
    metadata.isSandbox = annotations["io.kubernetes.cri-o.ContainerType"] == "sandbox"
    metadata.pod = kubernetes("io.kubernetes.pod.name")
    metadata.namespace = kubernetes("io.kubernetes.pod.namespace")
    metadata.container = kubernetes("io.kubernetes.container.name")
    metadata.podUID = kubernetes("io.kubernetes.pod.uid")
    return metadata
}

/// Metadata per container id, read from the runtimes' state files once and kept while the container
/// exists; never from a runtime API.
///
/// A state file that is absent or unreadable (they are root-only) is tried again after
/// `retryInterval`; one that does not parse (being written) at the next scrape.
final class ContainerMetadataStore: Sendable {
    private enum Entry {
        case known(ContainerMetadata)
        case unavailable(retryAt: ContinuousClock.Instant)
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let retryInterval: Duration

    init(retryInterval: Duration = .seconds(60)) {
        self.retryInterval = retryInterval
    }

    /// The metadata of a container, or nil when its runtime's state file cannot be read (yet).
    func metadata(for container: ContainerRef, paths: PathRoots, reader: FileReader) -> ContainerMetadata? {
        let now = ContinuousClock.now
        switch self.entries.withLock({ $0[container.id] }) {
        case .known(let metadata): return metadata
        case .unavailable(let retryAt) where now < retryAt: return nil
        default: break
        }
        switch Self.read(container, paths: paths, reader: reader) {
        case .found(let metadata):
            self.entries.withLock { $0[container.id] = .known(metadata) }
            return metadata
        case .missing:
            self.entries.withLock { $0[container.id] = .unavailable(retryAt: now + self.retryInterval) }
            return nil
        case .incomplete:
            return nil
        }
    }

    /// Forgets the containers that are gone.
    func keepOnly(_ ids: Set<String>) {
        self.entries.withLock { entries in
            guard entries.count > ids.count || entries.keys.contains(where: { !ids.contains($0) }) else { return }
            entries = entries.filter { ids.contains($0.key) }
        }
    }

    var count: Int { self.entries.withLock { $0.count } }

    private enum ReadResult {
        case found(ContainerMetadata)
        case missing
        case incomplete
    }

    private enum Format {
        case docker
        case oci
    }

    private static func read(_ container: ContainerRef, paths: PathRoots, reader: FileReader) -> ReadResult {
        switch container.runtime {
        case .machine, .lxc:
            return .found(ContainerMetadata(name: container.id))
        default: break
        }
        for (path, format) in Self.candidates(for: container, paths: paths) {
            let bytes: ArraySlice<UInt8>
            do {
                bytes = try reader.read(path)
            } catch {
                continue  // absent, or not readable without root
            }
            do {
                var metadata =
                    switch format {
                    case .docker: try parseDockerConfig(bytes)
                    case .oci: try parseOCIConfig(bytes)
                    }
                // cAdvisor names containerd containers by id.
                if metadata.name.isEmpty && (container.runtime == .containerd || container.runtime == .unknown) {
                    metadata.name = container.id
                }
                if metadata.podUID.isEmpty, let podUID = container.podUID { metadata.podUID = podUID }
                return .found(metadata)
            } catch {
                return .incomplete
            }
        }
        return .missing
    }

    /// Where each runtime keeps a container's state, most likely first.
    private static func candidates(for container: ContainerRef, paths: PathRoots) -> [(String, Format)] {
        let id = container.id
        let docker = (paths.root("var/lib/docker/containers/\(id)/config.v2.json"), Format.docker)
        let storage = (
            paths.root("var/lib/containers/storage/overlay-containers/\(id)/userdata/config.json"), Format.oci
        )
        func containerd(_ namespace: String) -> [(String, Format)] {
            [
                (paths.root("run/containerd/io.containerd.runtime.v2.task/\(namespace)/\(id)/config.json"), .oci),
                (paths.root("run/k3s/containerd/io.containerd.runtime.v2.task/\(namespace)/\(id)/config.json"), .oci),
            ]
        }
        switch container.runtime {
        case .docker: return [docker]
        case .containerd: return containerd("k8s.io")
        case .crio, .podman: return [storage]
        case .nerdctl: return containerd("default")
        case .unknown:
            if container.podUID != nil { return containerd("k8s.io") + [docker, storage] }
            return containerd(container.parentName ?? "default") + [docker]
        case .machine, .lxc: return []
        }
    }
}
