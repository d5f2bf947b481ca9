import Foundation
import Testing
import VigilCore

/// `packaging/vigil.service` run by a real systemd (booted in a private namespace), with every
/// sandboxing directive it ships: no collector may fail inside the sandbox that succeeds outside it.
@Suite(.serialized, .enabled(if: NamespacedSystemd.isSupported, "needs root, unshare, nsenter, systemd and dbus"))
struct PackagedUnitTests {
    @Test func theSandboxCostsNoCollector() async throws {
        let (insidePort, outsidePort) = (19590, 19591)
        let systemd = try await blocking {
            try NamespacedSystemd(
                units: ["vp-test.target": "[Unit]\nDefaultDependencies=no\n"],
                target: "vp-test.target"
            )
        }
        defer { systemd.stop() }
        let inside = try await blocking { () throws -> [String: Double] in
            // The shipped configuration too, copied to /run as the binary is (PrivateTmp= hides a checkout
            // under /tmp).
            try FileManager.default.copyItem(
                atPath: NamespacedSystemd.packageRoot + "/packaging/vigil.yml",
                toPath: "/proc/\(systemd.pid)/root/run/vigil.yml"
            )
            let unit = try packagedUnit(binary: try systemd.installVigil(), port: insidePort)
            try unit.write(
                toFile: "/proc/\(systemd.pid)/root/run/systemd/system/vigil.service",
                atomically: true,
                encoding: .utf8
            )
            try systemd.run(["systemctl", "daemon-reload"])
            try systemd.run(["systemctl", "start", "vigil.service"])
            let log = {
                (try? String(contentsOfFile: "/proc/\(systemd.pid)/root/run/vigil.log", encoding: .utf8)) ?? ""
            }
            do {
                try systemd.waitUntil(timeout: .seconds(30), "the packaged vigil.service listens") {
                    (try? httpGet(port: insidePort, path: "/")) != nil
                }
            } catch {
                let state = try? systemd.show("vigil.service", ["ActiveState", "Result", "ExecMainStatus"])
                throw HarnessError("\(error): vigil.service \(state ?? [:]), its output: \(log())")
            }
            return try collectorSuccess(port: insidePort)
        }

        let outside = try await blocking { () throws -> [String: Double] in
            let vigil = Process()
            vigil.executableURL = URL(fileURLWithPath: NamespacedSystemd.vigilBinary)
            vigil.arguments = ["--web.listen-address=127.0.0.1:\(outsidePort)"]
            vigil.standardOutput = FileHandle.nullDevice
            vigil.standardError = FileHandle.nullDevice
            try vigil.run()
            defer {
                vigil.terminate()
                vigil.waitUntilExit()
            }
            try systemd.waitUntil(timeout: .seconds(30), "vigil listens outside") {
                (try? httpGet(port: outsidePort, path: "/")) != nil
            }
            return try collectorSuccess(port: outsidePort)
        }

        #expect(inside["timex"] == 1, "timex needs adjtimex(2), which ProtectClock= denies even to read")
        #expect(inside.keys.sorted() == outside.keys.sorted())
        let lost = outside.filter { $0.value == 1 && inside[$0.key] != 1 }.keys.sorted()
        #expect(lost == [], "collectors that fail only in the packaged unit's sandbox")
    }
}

/// The packaged unit as the test's systemd can run it: the test's binary with the shipped configuration
/// (copied to /run/vigil.yml), listening on `port` (the flag wins over the file), as `nobody` (the host
/// has no `vigil` user), without the dependencies and the state directory that would reach outside the
/// namespace (the host's network-online units, /var/lib on its disk), its output in /run/vigil.log.
/// Every sandboxing directive stays as shipped.
private func packagedUnit(binary: String, port: Int) throws -> String {
    let shipped = try String(
        contentsOfFile: NamespacedSystemd.packageRoot + "/packaging/vigil.service",
        encoding: .utf8
    )
    var lines: [String] = []
    for line in shipped.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
        switch line.prefix(while: { $0 != "=" }) {
        case "Wants", "After", "StateDirectory": continue
        case "ExecStart":
            lines.append("ExecStart=\(binary) --config.file=/run/vigil.yml --web.listen-address=127.0.0.1:\(port)")
        case "User": lines.append("User=nobody")
        case "Group": lines.append("Group=nogroup")
        case "[Unit]": lines += [line, "DefaultDependencies=no"]
        case "[Service]": lines += [line, "StandardOutput=append:/run/vigil.log", "StandardError=inherit"]
        default: lines.append(line)
        }
    }
    return lines.joined(separator: "\n")
}

/// `node_scrape_collector_success` of every collector, by name.
private func collectorSuccess(port: Int) throws -> [String: Double] {
    let families = try parseExposition(try httpGet(port: port, path: "/metrics").body)
    let samples = families.first { $0.name == "node_scrape_collector_success" }?.samples ?? []
    return Dictionary(uniqueKeysWithValues: samples.map { ($0[label: "collector"] ?? "", $0.value) })
}
