import Foundation

/// A TCP connection to 127.0.0.1, closed on deinit.
final class LoopbackConnection: Sendable {
    let descriptor: Int32

    init(port: Int) throws {
        self.descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard self.descriptor >= 0 else { throw HarnessError("socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(0x7f00_0001).bigEndian
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(self.descriptor)
            throw HarnessError("connect to 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        close(self.descriptor)
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard write(self.descriptor, bytes, bytes.count) == bytes.count else { throw HarnessError("write: \(errno)") }
    }

    /// Reads until the peer closes the connection.
    func readToEnd() throws -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(self.descriptor, &buffer, buffer.count)
            if count == 0 { return received }
            guard count > 0 else { throw HarnessError("read: \(String(cString: strerror(errno)))") }
            received += buffer[..<count]
        }
    }
}

/// A plain HTTP/1.0 GET to 127.0.0.1: the status code and the body.
func httpGet(port: Int, path: String, headers: [String: String] = [:]) throws -> (status: Int, body: String) {
    let connection = try LoopbackConnection(port: port)
    var request = "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n"
    for (name, value) in headers { request += "\(name): \(value)\r\n" }
    try connection.send(request + "\r\n")
    let response = String(decoding: try connection.readToEnd(), as: UTF8.self)
    guard let headerEnd = response.range(of: "\r\n\r\n"),
        let status = Int(response.split(separator: " ", maxSplits: 2).dropFirst().first ?? "")
    else { throw HarnessError("malformed HTTP response: \(response.prefix(200))") }
    return (status, String(response[headerEnd.upperBound...]))
}
