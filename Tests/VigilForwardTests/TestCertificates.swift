import Foundation

/// A CA, a server certificate it signed (for localhost and 127.0.0.1), and an unrelated self-signed
/// certificate for the same names, made once per test process with the `openssl` command.
struct TestCertificates: Sendable {
    let directory: String
    var caFile: String { self.directory + "/ca.pem" }
    var serverCertificate: String { self.directory + "/server.pem" }
    var serverKey: String { self.directory + "/server.key" }
    var untrustedCertificate: String { self.directory + "/untrusted.pem" }
    var untrustedKey: String { self.directory + "/untrusted.key" }

    static let shared: Result<TestCertificates, any Error> = Result { try TestCertificates.make() }

    private static func make() throws -> TestCertificates {
        // One directory per test process and module (this file is shared by the forward and journal
        // tests); those of processes that have ended are removed.
        let prefix = "vigil-fwd-certs-"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? [] where name.hasPrefix(prefix) {
            let pid = name.dropFirst(prefix.count).prefix { $0 != "-" }
            if let pid = Int32(pid), kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: "/tmp/" + name)
            }
        }
        let module = "\(#fileID)".prefix { $0 != "/" }
        let directory = "/tmp/\(prefix)\(getpid())-\(module)"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        let names = "subjectAltName=DNS:localhost,IP:127.0.0.1"
        try openssl(
            ["req", "-x509"] + ec + [
                "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=vigil test CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ],
            in: directory
        )
        try openssl(
            ["req"] + ec + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
            in: directory
        )
        try "\(names)\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            .write(toFile: directory + "/server.ext", atomically: true, encoding: .utf8)
        try openssl(
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
            ],
            in: directory
        )
        try openssl(
            ["req", "-x509"] + ec + [
                "-keyout", "untrusted.key", "-out", "untrusted.pem", "-days", "2", "-subj", "/CN=localhost",
                "-addext", names,
            ],
            in: directory
        )
        return TestCertificates(directory: directory)
    }

    private static func openssl(_ arguments: [String], in directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw CertificateError(description: "openssl \(arguments.joined(separator: " ")) failed: \(message)")
        }
    }

    struct CertificateError: Error, CustomStringConvertible {
        let description: String
    }
}
