import Foundation
import Testing
import VigilCore

@Suite struct FileReaderTests {
    /// Files of every size around a page read whole, whatever shows their end, by readers that start
    /// with a buffer smaller than a page (never asking for more than it holds) or with several pages.
    @Test(arguments: [FileEnd.emptyRead, .shortRead, .roomForLine(100)], [16, 256, 16384])
    func readsRegularFilesWhole(end: FileEnd, capacity: Int) throws {
        let directory = NSTemporaryDirectory() + "vigil-file-reader-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let reader = FileReader(capacity: capacity)
        for size in [0, 1, 3995, 3996, 4095, 4096, 4097, 8192, 40000] {
            let text = (0..<size).map { $0 % 50 == 49 ? UInt8(ascii: "\n") : UInt8(ascii: "a") + UInt8($0 % 26) }
            let path = directory + "/\(size)"
            #expect(FileManager.default.createFile(atPath: path, contents: Data(text)))
            #expect(Array(try reader.read(KeptOpenFile(path, end: end))) == text, "\(size) bytes")
        }
    }

    /// Kernel files generated whole, read up to the first short read, give what reading up to an
    /// empty read gives: `/proc/net/netstat` (longer than a page on recent kernels) and a sysctl.
    @Test func filesGeneratedWholeEndAtTheirFirstShortRead() throws {
        let reader = FileReader()
        func names(_ path: String, _ end: FileEnd) throws -> [Substring] {
            let text = String(decoding: try reader.read(KeptOpenFile(path, end: end)), as: UTF8.self)
            // The values move between reads; the names (netstat's header lines) stay.
            return text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.prefix { $0 != " " } }
        }
        #expect(try names("/proc/net/netstat", .shortRead) == names("/proc/net/netstat", .emptyRead))
        #expect(try names("/proc/sys/kernel/pid_max", .shortRead) == names("/proc/sys/kernel/pid_max", .emptyRead))
    }
}
