import VigilCore

/// Memory errors the memory controllers corrected and could not correct (ECC), in total and per chip-select
/// row, from `/sys/devices/system/edac/mc/mc*/`. Errors a controller could not place on a row count under
/// `csrow="unknown"`. Hosts without EDAC (most virtual machines) have no series.
struct EdacCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "edac",
        enabledByDefault: true,
        help: "memory controllers' error counts from /sys/devices/system/edac"
    ) { setup in
        EdacCollector(directory: setup.paths.sys("devices/system/edac/mc"))
    }

    let directory: String

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        var controllers: [MemoryController] = []
        for name in try FileSystem.sortedEntriesIfPresent(of: self.directory) where hasNumberedPrefix(name, "mc") {
            do {
                controllers.append(try readController(name, in: self.directory, reader: context.reader))
            } catch {
                context.recordFailure("\(error)")
            }
        }
        guard !controllers.isEmpty else { return }
        writer.family(correctableFamily)
        for controller in controllers {
            writer.sample(Double(controller.errors.corrected), ("controller", controller.number))
        }
        writer.family(uncorrectableFamily)
        for controller in controllers {
            writer.sample(Double(controller.errors.uncorrected), ("controller", controller.number))
        }
        writer.family(rowCorrectableFamily)
        for controller in controllers {
            for row in controller.rows {
                writer.sample(Double(row.errors.corrected), ("controller", controller.number), ("csrow", row.number))
            }
        }
        writer.family(rowUncorrectableFamily)
        for controller in controllers {
            for row in controller.rows {
                writer.sample(Double(row.errors.uncorrected), ("controller", controller.number), ("csrow", row.number))
            }
        }
    }
}

private struct ErrorCounts {
    var corrected: UInt64
    var uncorrected: UInt64
}

/// One `mcN` directory: its totals and its rows, the errors without a row last as row `unknown`.
private struct MemoryController {
    var number: String
    var errors: ErrorCounts
    var rows: [(number: String, errors: ErrorCounts)]
}

private func readController(_ name: String, in directory: String, reader: FileReader) throws -> MemoryController {
    let path = directory + "/" + name
    func count(_ file: String) throws -> UInt64 {
        guard let value = try reader.readUInt64(file) else {
            throw CollectorError.failed("\(file) does not hold a number")
        }
        return value
    }
    func counts(_ corrected: String, _ uncorrected: String) throws -> ErrorCounts {
        ErrorCounts(corrected: try count(corrected), uncorrected: try count(uncorrected))
    }
    var rows: [(number: String, errors: ErrorCounts)] = []
    for row in try FileSystem.entries(of: path).sorted() where hasNumberedPrefix(row, "csrow") {
        let rowPath = path + "/" + row
        rows.append((String(row.dropFirst("csrow".count)), try counts(rowPath + "/ce_count", rowPath + "/ue_count")))
    }
    rows.append(("unknown", try counts(path + "/ce_noinfo_count", path + "/ue_noinfo_count")))
    return MemoryController(
        number: String(name.dropFirst("mc".count)),
        errors: try counts(path + "/ce_count", path + "/ue_count"),
        rows: rows
    )
}

private let correctableFamily = MetricFamily(
    "node_edac_correctable_errors_total",
    help: "Total correctable memory errors.",
    type: .counter
)
private let uncorrectableFamily = MetricFamily(
    "node_edac_uncorrectable_errors_total",
    help: "Total uncorrectable memory errors.",
    type: .counter
)
private let rowCorrectableFamily = MetricFamily(
    "node_edac_csrow_correctable_errors_total",
    help: "Total correctable memory errors for this csrow.",
    type: .counter
)
private let rowUncorrectableFamily = MetricFamily(
    "node_edac_csrow_uncorrectable_errors_total",
    help: "Total uncorrectable memory errors for this csrow.",
    type: .counter
)
