import Foundation
import Testing
import VigilJournal

@Suite struct CursorStoreTests {
    private let cursor =
        "s=c21c88f9d454419297e140c8c91487bd;i=6;b=f3070d0cdeee48ca8c86c4f77cf925ec;m=4fcfcd32;t=66121289547ec;x=7a5d682fe81c0e35"

    @Test func savesAndLoadsACursor() async throws {
        try await TemporaryDirectory.with { directory in
            let store = CursorStore(path: directory.file("a/b/journal.cursor"))
            #expect(store.load() == .missing)
            try store.prepareDirectory()
            try store.save(self.cursor)
            #expect(store.load() == .cursor(self.cursor))
            try store.save(self.cursor.replacingOccurrences(of: "i=6", with: "i=7"))
            #expect(store.load() == .cursor(self.cursor.replacingOccurrences(of: "i=6", with: "i=7")))
            // journalctl --cursor-file format: the cursor alone; no temporary file left behind.
            #expect(try String(contentsOfFile: store.path, encoding: .utf8).hasPrefix("s=c21c88f9"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.file("a/b")) == ["journal.cursor"])
        }
    }

    @Test func aCursorWrittenByJournalctlIsRead() async throws {
        try await TemporaryDirectory.with { directory in
            let path = directory.file("journal.cursor")
            try self.cursor.write(toFile: path, atomically: true, encoding: .utf8)  // no newline
            #expect(CursorStore(path: path).load() == .cursor(self.cursor))
        }
    }

    @Test(arguments: [
        ([UInt8](), "empty"), (Array("\n\n".utf8), "empty"), ([0x00, 0xFF, 0x13], "bytes that no cursor contains"),
        (Array("hello world".utf8), "bytes that no cursor contains"),
        (Array("s=1;i=2".utf8), "is not a journal cursor"),
        (Array(String(repeating: "s=1;", count: 300).utf8), "more than any cursor"),
    ])
    func corruptFilesAreReportedWithTheReason(_ content: [UInt8], _ reason: String) async throws {
        try await TemporaryDirectory.with { directory in
            let path = directory.file("journal.cursor")
            try Data(content).write(to: URL(fileURLWithPath: path))
            guard case .corrupt(let message) = CursorStore(path: path).load() else {
                Issue.record("not reported as corrupt")
                return
            }
            #expect(message.contains(reason), "\(message)")
        }
    }

    @Test func anUnwritableDirectoryIsAnError() async throws {
        let store = CursorStore(path: "/proc/vigil-journal-test/journal.cursor")
        #expect(throws: (any Error).self) { try store.prepareDirectory() }
        #expect(throws: (any Error).self) { try store.save(self.cursor) }
    }
}
