import Foundation
import Testing
import VigilCore

@testable import Collectors

private func bytes(_ text: String) -> ArraySlice<UInt8> { ArraySlice(text.utf8) }

@Suite struct ContainersMountTests {
    private let roots = PathRoots(procfs: "/p", sysfs: "/fixture/sys", rootfs: "/fixture/root")

    @Test func findsTheControllersOfThisHybridHostByTypeNotByDirectoryName() throws {
        // Recorded from /proc/self/mountinfo of this project's Debian 12 host.
        let recorded = try FileReader().read(fixturesDirectory + "/cgroup-hybrid/proc/self/mountinfo")
        let mounts = parseCgroupMounts(recorded, paths: self.roots)
        #expect(mounts.cpu?.path == "/fixture/sys/fs/cgroup/cpu")
        #expect(mounts.cpuacct?.path == "/fixture/sys/fs/cgroup/cpuacct")
        #expect(mounts.memory?.path == "/fixture/sys/fs/cgroup/memory")
        #expect(mounts.blkio?.path == "/fixture/sys/fs/cgroup/blkio")
        #expect(mounts.pids?.path == "/fixture/sys/fs/cgroup/pids")
        #expect(mounts.systemd?.path == "/fixture/sys/fs/cgroup/systemd")
        #expect(mounts.unified?.path == "/fixture/sys/fs/cgroup/unified")
        #expect(mounts.hasV1)
        #expect(mounts.walked == mounts.memory)
    }

    @Test func coMountedControllersShareOneHierarchy() {
        let mounts = parseCgroupMounts(
            bytes(
                "33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup cgroup rw,cpu,cpuacct\n"
                    + "34 31 0:31 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory\n"
            ),
            paths: self.roots
        )
        #expect(mounts.cpu?.path == "/fixture/sys/fs/cgroup/cpu,cpuacct")
        #expect(mounts.cpuacct == mounts.cpu)
        #expect(mounts.unified == nil)
    }

    @Test func aPureV2HostIsWalkedInItsOnlyHierarchy() {
        let mounts = parseCgroupMounts(
            bytes("31 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"),
            paths: self.roots
        )
        #expect(!mounts.hasV1)
        #expect(mounts.walked?.path == "/fixture/sys/fs/cgroup")
    }

    @Test func mountPointsOutsideSysAreReadUnderTheRootfsAndEscapesAreDecoded() {
        let mounts = parseCgroupMounts(
            bytes(
                "50 1 0:40 /docker /run/my\\040cgroups rw - cgroup2 cgroup2 rw\n"
                    + "51 1 0:41 / /cg/memory rw - cgroup none rw,memory\n"
            ),
            paths: self.roots
        )
        #expect(mounts.unified == CgroupMount(path: "/fixture/root/run/my cgroups", root: "/docker"))
        #expect(mounts.memory?.path == "/fixture/root/cg/memory")
    }

    @Test func skipsOtherFileSystemsBrokenLinesAndLaterBindMounts() {
        let mounts = parseCgroupMounts(
            bytes(
                "garbage\n"
                    + "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
                    + "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
                    + "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
                    + "36 31 0:32 / /sys/fs/cgroup/memory rw,relatime cgroup cgroup rw,memory\n"
                    + "90 1 0:32 / /mnt/memory rw,relatime - cgroup cgroup rw,memory\n"
            ),
            paths: self.roots
        )
        #expect(mounts.memory?.path == "/fixture/sys/fs/cgroup/memory")
        #expect(mounts.cpu == nil)
        #expect(parseCgroupMounts([], paths: self.roots).isEmpty)
    }
}

@Suite struct ContainersIdentityTests {
    private let id = String(repeating: "0123456789abcdef", count: 4)

    private func container(_ path: String) -> ContainerRef? {
        if case .container(let container) = identifyCgroupPath(path) { return container }
        return nil
    }

    @Test func dockerWithBothDrivers() {
        #expect(self.container("/docker/\(self.id)") == ContainerRef(runtime: .docker, id: self.id))
        #expect(self.container("/system.slice/docker-\(self.id).scope") == ContainerRef(runtime: .docker, id: self.id))
        #expect(identifyCgroupPath("/system.slice/docker.service") == .other)
    }

    @Test func kubernetesPodsAndContainersWithBothDrivers() {
        let uid = "6b3e1d52-7d4b-4c4e-9d4f-0e1a2b3c4d5e"
        #expect(identifyCgroupPath("/kubepods") == .kubepods)
        #expect(identifyCgroupPath("/kubepods/burstable") == .kubepods)
        #expect(identifyCgroupPath("/kubepods/burstable/pod\(uid)") == .pod(uid: uid))
        #expect(identifyCgroupPath("/kubepods/pod\(uid)") == .pod(uid: uid))
        #expect(
            self.container("/kubepods/besteffort/pod\(uid)/\(self.id)")
                == ContainerRef(runtime: .unknown, id: self.id, podUID: uid)
        )
        let slice =
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uid.replacing("-", with: "_")).slice"
        #expect(identifyCgroupPath("/kubepods.slice") == .kubepods)
        #expect(identifyCgroupPath("/kubepods.slice/kubepods-burstable.slice") == .kubepods)
        #expect(identifyCgroupPath(slice) == .pod(uid: uid))
        #expect(
            identifyCgroupPath("/kubepods.slice/kubepods-pod\(uid.replacing("-", with: "_")).slice") == .pod(uid: uid)
        )
        #expect(
            self.container("\(slice)/cri-containerd-\(self.id).scope")
                == ContainerRef(runtime: .containerd, id: self.id, podUID: uid)
        )
        // kind nests the kubelet's slices one level deeper.
        #expect(identifyCgroupPath("/kubelet.slice/kubelet-kubepods.slice") == .kubepods)
        // Static pods have 32-hex UIDs.
        #expect(
            identifyCgroupPath("/kubepods/pod8c9f0e1d2c3b4a5968778695a4b3c2d1")
                == .pod(uid: "8c9f0e1d2c3b4a5968778695a4b3c2d1")
        )
        #expect(identifyCgroupPath("/kubepods/podNotHex") == .other)
    }

    @Test func crioContainersButNotTheirConmon() {
        let pod = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1_2.slice"
        #expect(
            self.container("\(pod)/crio-\(self.id).scope") == ContainerRef(runtime: .crio, id: self.id, podUID: "1-2")
        )
        // CRI-O's sandboxes lack `.scope` (cri-o#8748); its cgroupfs driver never writes one.
        #expect(self.container("\(pod)/crio-\(self.id)")?.runtime == .crio)
        #expect(identifyCgroupPath("\(pod)/crio-conmon-\(self.id).scope") == .other)
        #expect(self.container("/kubepods/burstable/pod1-2/crio-\(self.id)")?.podUID == "1-2")
    }

    @Test func podmanRootfulRootlessAndPods() {
        #expect(self.container("/machine.slice/libpod-\(self.id).scope")?.runtime == .podman)
        #expect(identifyCgroupPath("/machine.slice/libpod-conmon-\(self.id).scope") == .other)
        #expect(self.container("/libpod_parent/libpod-\(self.id)")?.runtime == .podman)
        #expect(self.container("/libpod_parent/\(self.id)")?.runtime == .podman)
        #expect(identifyCgroupPath("/machine.slice/machine-libpod_pod_\(self.id).slice") == .other)
        #expect(self.container("/machine.slice/machine-libpod_pod_\(self.id).slice/libpod-\(self.id).scope") != nil)
        let rootless = "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-\(self.id).scope"
        #expect(self.container(rootless)?.runtime == .podman)
        // The walk does not enter containers, so the trailing `container` is never reported on its own.
        #expect(!shouldDescend(name: "libpod-\(self.id).scope", kind: identifyCgroupPath(rootless), all: true))
    }

    @Test func machinesAndLXC() {
        #expect(
            self.container("/machine.slice/systemd-nspawn@web\\x2d1.service")
                == ContainerRef(runtime: .machine, id: "web-1")
        )
        #expect(
            self.container("/machine.slice/machine-qemu\\x2d1\\x2dvm.scope")
                == ContainerRef(runtime: .machine, id: "qemu-1-vm")
        )
        #expect(self.container("/lxc.payload.web") == ContainerRef(runtime: .lxc, id: "web"))
        #expect(self.container("/lxc.payload/web") == ContainerRef(runtime: .lxc, id: "web"))
        #expect(self.container("/lxc/101") == ContainerRef(runtime: .lxc, id: "101"))
        #expect(identifyCgroupPath("/lxc.monitor.web") == .other)
    }

    @Test func otherRuntimesAndNonContainers() {
        #expect(self.container("/system.slice/nerdctl-\(self.id).scope")?.runtime == .nerdctl)
        #expect(
            self.container("/default/\(self.id)") == ContainerRef(runtime: .unknown, id: self.id, parentName: "default")
        )
        #expect(identifyCgroupPath("/system.slice/ssh.service") == .other)
        #expect(identifyCgroupPath("/user.slice/user-1000.slice/session-3.scope") == .other)
        #expect(identifyCgroupPath("/docker/\(self.id.dropLast())") == .other)
        #expect(identifyCgroupPath("/docker/\(self.id.uppercased())") == .other)
        #expect(identifyCgroupPath("/") == .root)
    }

    @Test func theWalkSkipsWhatCannotHoldContainersUnlessAllCgroupsAreWanted() {
        #expect(shouldDescend(name: "system.slice", kind: .other, all: false))
        #expect(!shouldDescend(name: "ssh.service", kind: .other, all: false))
        #expect(shouldDescend(name: "user@1000.service", kind: .other, all: false))
        #expect(!shouldDescend(name: "session-3.scope", kind: .other, all: false))
        #expect(!shouldDescend(name: "dev-mqueue.mount", kind: .other, all: false))
        #expect(shouldDescend(name: "ssh.service", kind: .other, all: true))
        #expect(!shouldDescend(name: self.id, kind: .container(ContainerRef(runtime: .docker, id: self.id)), all: true))
    }
}

@Suite struct ContainersParserTests {
    @Test func memoryStatOfBothVersionsAndUnexpectedKeys() {
        let v1 = parseMemoryStat(
            bytes("cache 100\nrss 200\ntotal_cache 300\ntotal_rss 400\nnew_key 5\nbroken\ntotal_inactive_file x\n")
        )
        #expect(v1.cache == 100)
        #expect(v1.rss == 200)
        #expect(v1.totalCache == 300)
        #expect(v1.totalRSS == 400)
        #expect(v1.totalInactiveFile == nil)
        let v2 = parseMemoryStat(bytes("anon 7\nfile 8\nfile_mapped 9\ninactive_file 3\npgfault 11\n"))
        #expect(v2.anon == 7)
        #expect(v2.file == 8)
        #expect(v2.fileMapped == 9)
        #expect(v2.inactiveFile == 3)
        #expect(v2.pgfault == 11)
    }

    @Test func keyedValuesTakeTheFirstFieldAndSkipBrokenLines() {
        var seen: [String: UInt64] = [:]
        forEachKeyedValue(
            bytes("a 1\nb 12 34\nc 1x\nd\n\ne 18446744073709551616\nf 18446744073709551615\n g 7\nh 9")
        ) { key, value in
            seen[String(decoding: key, as: UTF8.self)] = value
        }
        #expect(seen == ["a": 1, "b": 12, "f": .max, "h": 9])
        #expect(keyedValue(bytes("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), "oom_kill") == 3)
    }

    @Test func workingSetIsCAdvisorsFormula() {
        #expect(workingSet(usage: 26_914_816, inactiveFile: 9_945_088) == 16_969_728)
        #expect(workingSet(usage: 5, inactiveFile: 9) == 0)
        #expect(workingSet(usage: 5, inactiveFile: nil) == 5)
    }

    @Test func limitsWithMax() {
        #expect(parseSingleValue(bytes("max\n")) == .max)
        #expect(parseSingleValue(bytes("9223372036854771712\n")) == 9_223_372_036_854_771_712)
        #expect(parseSingleValue(bytes("")) == nil)
        #expect(parseSignedValue(bytes("-1\n")) == -1)
        #expect(specMemoryValue(9_223_372_036_854_771_712) == 0)
        #expect(specMemoryValue(.max) == 0)
        #expect(specMemoryValue(536_870_912) == 536_870_912)
        #expect(parseCPUMax(bytes("max 100000\n")) == (nil, 100_000))
        #expect(parseCPUMax(bytes("50000 100000\n")) == (50000, 100_000))
        #expect(cpuSharesFromWeight(100) == 2 + (99 * 262_142) / 9999)
        #expect(cpuSharesFromWeight(1) == 2)
        #expect(cpuSharesFromWeight(10000) == 262_144)
        #expect(cpuSharesFromWeight(0) == nil)
    }

    @Test func pressureTotals() {
        let totals = parsePressure(
            bytes(
                "some avg10=13.64 avg60=2.80 avg300=0.59 total=1814913\nfull avg10=13.49 avg60=2.77 avg300=0.59 total=1803948\n"
            )
        )
        #expect(totals == PressureTotals(some: 1_814_913, full: 1_803_948))
        #expect(parsePressure(bytes("some avg10=0.00 total=5\n")) == PressureTotals(some: 5, full: nil))
    }

    @Test func blkioAndIOStat() {
        let entries = parseBlkio(bytes("8:0 Read 4096\n8:0 Write 12\n8:0 Frobnicate 3\n253:1 Total 9\nTotal 4108\n"))
        #expect(
            entries == [
                IOEntry(major: 8, minor: 0, operation: .read, value: 4096),
                IOEntry(major: 8, minor: 0, operation: .write, value: 12),
                IOEntry(major: 253, minor: 1, operation: .total, value: 9),
            ]
        )
        #expect(parseBlkio(bytes("Total 0\n")).isEmpty)
        let (serviceBytes, serviced) = parseIOStat(bytes("254:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"))
        #expect(serviceBytes.map(\.value) == [10, 20])
        #expect(serviced.map(\.operation) == [.read, .write])
    }

    @Test func procsAndNetDev() {
        #expect(parseProcs(bytes("12\n34\n")) == (2, 12))
        #expect(parseProcs(bytes("")) == (0, nil))
        let interfaces = parseNetDev(
            bytes(
                """
                Inter-|   Receive                                                |  Transmit
                 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
                  eth0:1234567890   456    7    8    0     0          0         0     4321      98    6    5    0     0       0          0
                veth12:       1       1    0    0    0     0          0         0        1       1    0    0    0     0       0          0
                  tap0: 1 2 3
                """
            )
        )
        #expect(
            interfaces == [
                InterfaceCounters(
                    name: "eth0",
                    receiveBytes: 1_234_567_890,
                    receivePackets: 456,
                    receiveErrors: 7,
                    receiveDropped: 8,
                    transmitBytes: 4321,
                    transmitPackets: 98,
                    transmitErrors: 6,
                    transmitDropped: 5
                )
            ]
        )
    }

    @Test func swapDevices() {
        let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        #expect(!hostMayHaveSwap(bytes(header)))
        #expect(!hostMayHaveSwap(bytes(header + "\n")))
        #expect(hostMayHaveSwap(bytes(header + "/swapfile file 1048572 0 -2\n")))
        #expect(hostMayHaveSwap(nil))
    }

    @Test func cpuList() {
        #expect(countCPUs(bytes("0-1")) == 2)
        #expect(countCPUs(bytes("0-3,6,8-9")) == 7)
        #expect(countCPUs(bytes("x")) == nil)
    }
}

@Suite struct ContainersJSONTests {
    @Test func readsNestedKeysAndSkipsTheRest() throws {
        let json = #"{"a": [1, -2.5e3, {"b": null}], "Name": "/web\u00e9\ud83d\ude00", "n": 42, "t": true}"#
        var name = ""
        var number: Int64 = 0
        var reader = JSONReader(bytes(json))
        try reader.readObject { (key, reader) throws(JSONError) in
            switch key {
            case "Name": name = try reader.readString()
            case "n": number = try reader.readInteger()
            default: try reader.skipValue()
            }
        }
        try reader.finish()
        #expect(name == "/webé😀")
        #expect(number == 42)
    }

    @Test func rejectsTruncatedAndMalformedDocuments() {
        let broken = [
            #"{"Name": "/web""#, #"{"Name": "/we"#, #"{"a": [1, 2"#, #"{"a": 01}"#, #"{"a": tru}"#, #"{"a": 1,}"#,
            #"{"a" 1}"#, #"{"a": "\x"}"#, "{\"a\": \"tab\there\"}", #"{} {}"#, "", #"{"a": 1.}"#,
            String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
        ]
        for text in broken {
            var reader = JSONReader(bytes(text))
            #expect(throws: JSONError.self, "\(text)") {
                try reader.skipValue()
                try reader.finish()
            }
        }
    }

    @Test func dockerConfigOfARealLayout() throws {
        let config = #"""
            {"State":{"Running":true,"Pid":4011},"ID":"abc","Config":{"Hostname":"abc","Env":["A=1"],"Image":"nginx:1.25",
            "Labels":{"io.kubernetes.pod.name":"web-0","io.kubernetes.pod.namespace":"prod","io.kubernetes.container.name":"POD",
            "io.kubernetes.docker.type":"podsandbox","io.kubernetes.pod.uid":"u-1","n":3}},"Name":"/k8s_POD_web-0","Driver":"overlay2"}
            """#
        let metadata = try parseDockerConfig(bytes(config))
        #expect(
            metadata
                == ContainerMetadata(
                    name: "k8s_POD_web-0",
                    image: "nginx:1.25",
                    pod: "web-0",
                    namespace: "prod",
                    container: "POD",
                    podUID: "u-1",
                    isSandbox: true
                )
        )
        #expect(throws: JSONError.self) { try parseDockerConfig(bytes(String(config.prefix(120)))) }
    }

    @Test func ociAnnotationsOfContainerdAndCRIO() throws {
        let containerd = try parseOCIConfig(
            bytes(
                #"{"ociVersion":"1.1.0","annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"app","io.kubernetes.cri.image-name":"img:1","io.kubernetes.cri.sandbox-name":"p","io.kubernetes.cri.sandbox-namespace":"ns","io.kubernetes.cri.sandbox-uid":"u"}}"#
            )
        )
        #expect(
            containerd == ContainerMetadata(image: "img:1", pod: "p", namespace: "ns", container: "app", podUID: "u")
        )
        #expect(containerd.isPodContainer)
        let crio = try parseOCIConfig(
            bytes(
                #"{"annotations":{"io.kubernetes.cri-o.Name":"k8s_x","io.kubernetes.cri-o.ImageName":"i","io.kubernetes.cri-o.ContainerType":"sandbox","io.kubernetes.cri-o.Labels":"{\"io.kubernetes.pod.name\":\"p\",\"io.kubernetes.pod.namespace\":\"n\"}"}}"#
            )
        )
        #expect(crio == ContainerMetadata(name: "k8s_x", image: "i", pod: "p", namespace: "n", isSandbox: true))
        #expect(try parseOCIConfig(bytes(#"{"ociVersion":"1.0.2"}"#)) == ContainerMetadata())
    }
}
