import Synchronization
import VigilCore

/// `/proc/stat`, which the cpu and stat collectors both parse: one descriptor kept open per path for
/// the whole process, and one read per scrape whose bytes both collectors share.
enum ProcStat {
    private static let files = Mutex<[String: KeptOpenFile]>([:])

    /// The kept-open `/proc/stat` under `paths`: the same object for every collector that asks.
    static func file(_ paths: PathRoots) -> KeptOpenFile {
        let path = paths.proc("stat")
        return self.files.withLock { files in
            if let file = files[path] { return file }
            let file = KeptOpenFile(path, end: .shortRead)
            files[path] = file
            return file
        }
    }

    /// This scrape's content of the file, read by the first collector that asks (keyed by its path).
    static func bytes(of file: KeptOpenFile, context: ScrapeContext) throws -> [UInt8] {
        try context.shared.value(file.path) { try Array(context.reader.read(file)) }
    }
}
