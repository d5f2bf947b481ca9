import Logging
import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Metrics that other programs write into `*.prom` files (node_exporter's textfile collector): every
/// file in the configured directories is read and parsed on every scrape.
///
/// As node_exporter: a file with client-side timestamps or a syntax error is skipped entirely and sets
/// `node_textfile_scrape_error 1` while the other files still count; `node_textfile_mtime_seconds` is
/// written for parsed files only (stat after parsing, so a broken file never looks fresh); a family in
/// several files is merged, a conflicting HELP (or TYPE) is an error and the first file wins, a family
/// without HELP gets `Metric read from <file1>, <file2>`, and label sets that differ within a family
/// are padded with empty labels.
///
/// Names vigil reserves: a file may not define the textfile collector's own two families, the scraper's
/// `node_scrape_collector_*` or anything in `vigil_*`; such a family is dropped and counts as an error.
/// A family that another collector writes in the same scrape is dropped from the textfile output by the
/// scraper, which then reports the textfile collector failed (see ``Collector/definesArbitraryFamilies``).
struct TextfileCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "textfile",
        enabledByDefault: true,
        help: "metrics from *.prom files written by other programs",
        options: [
            OptionSpec(
                "collector.textfile.directory",
                .strings([]),
                help: "Directory to read text files with metrics from, supports glob matching. (repeatable)"
            )
        ]
    ) { setup in
        TextfileCollector(directories: setup.settings.strings("collector.textfile.directory"))
    }

    /// The textfile collector's own families and the scraper's; `vigil_*` is vigil's own namespace.
    static func isReserved(_ family: String) -> Bool {
        family == "node_textfile_mtime_seconds" || family == "node_textfile_scrape_error"
            || family.hasPrefix("node_scrape_collector_") || family.hasPrefix("vigil_")
    }

    /// Directories or glob patterns.
    let directories: [String]

    var definesArbitraryFamilies: Bool { true }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        var merger = TextfileMerger()
        var modificationTimes: [(file: String, seconds: Double)] = []
        for directory in expandGlobs(self.directories) where !directory.isEmpty {
            let names: [String]
            do {
                names = try FileSystem.entries(of: directory).sorted()
            } catch {
                context.logger.error(
                    "failed to read textfile collector directory",
                    metadata: ["path": "\(directory)", "err": "\(error)"]
                )
                merger.errored = true
                continue
            }
            for name in names where name.hasSuffix(".prom") {
                let path = cleanPath(directory + "/" + name)
                let families: [ParsedFamily]
                do {
                    families = try parseTextfile(try context.reader.read(path))
                } catch {
                    context.logger.error(
                        "failed to collect textfile data",
                        metadata: ["file": "\(path)", "err": "\(error)"]
                    )
                    merger.errored = true
                    continue
                }
                merger.add(families, from: path, context: context)
                do {
                    let modified = try FileSystem.modificationTime(path)
                    modificationTimes.append((path, modified.rounded(.towardZero)))
                } catch {
                    context.logger.error(
                        "failed to collect textfile data",
                        metadata: ["file": "\(path)", "err": "\(error)"]
                    )
                    merger.errored = true
                }
            }
        }
        merger.write(into: &writer, context: context)
        if !modificationTimes.isEmpty {
            writer.family(mtimeFamily)
            for entry in modificationTimes.sorted(by: { $0.file < $1.file }) {
                writer.sample(entry.seconds, ("file", entry.file))
            }
        }
        writer.family(scrapeErrorFamily)
        writer.sample(merger.errored ? 1 : 0)
    }
}

private let mtimeFamily = MetricFamily(
    "node_textfile_mtime_seconds",
    help: "Unixtime mtime of textfiles successfully read.",
    type: .gauge
)
private let scrapeErrorFamily = MetricFamily(
    "node_textfile_scrape_error",
    help: "1 if there was an error opening or reading a file, 0 otherwise",
    type: .gauge
)

/// Why a textfile is skipped as a whole.
struct TextfileError: Error, CustomStringConvertible, Equatable {
    let description: String
}

/// Parses one `*.prom` file: the Prometheus text format, without client-side timestamps, with
/// histogram buckets and summary quantiles carrying valid `le` / `quantile` labels.
func parseTextfile(_ bytes: ArraySlice<UInt8>) throws -> [ParsedFamily] {
    let families = try parseExposition(bytes)
    for family in families {
        for sample in family.samples {
            if sample.timestamp != nil {
                throw TextfileError(description: "contains unsupported client-side timestamps, skipping entire file")
            }
            switch family.type {
            case "histogram":
                guard sample.name != family.name else {
                    throw TextfileError(description: "histogram \(family.name) has a sample without suffix")
                }
                if sample.name == family.name + "_bucket",
                    sample[label: "le"].flatMap({ ArraySlice($0.utf8).parseDouble() }) == nil
                {
                    throw TextfileError(description: "bucket of \(family.name) without a valid le label")
                }
            case "summary":
                if sample.name == family.name,
                    sample[label: "quantile"].flatMap({ ArraySlice($0.utf8).parseDouble() }) == nil
                {
                    throw TextfileError(description: "summary \(family.name) has a sample without a valid quantile")
                }
            default: break
            }
        }
    }
    return families
}

/// Families from several files, merged by name.
struct TextfileMerger {
    struct Family {
        var name: String
        var help: String?
        var type: String
        var files: [String]
        /// Per file, so that series of different files are never combined into one histogram.
        var parts: [(file: String, samples: [ParsedSample])]
    }

    var families: [String: Family] = [:]
    var errored = false

    mutating func add(_ parsed: [ParsedFamily], from file: String, context: ScrapeContext) {
        for family in parsed where !family.samples.isEmpty || family.help != nil {
            if TextfileCollector.isReserved(family.name) {
                context.logger.error(
                    "textfile defines a family name that vigil reserves; dropped",
                    metadata: ["metric": "\(family.name)", "file": "\(file)"]
                )
                self.errored = true
                continue
            }
            guard var existing = self.families[family.name] else {
                self.families[family.name] = Family(
                    name: family.name,
                    help: family.help,
                    type: family.type,
                    files: [file],
                    parts: [(file, family.samples)]
                )
                continue
            }
            if let help = family.help, let first = existing.help, help != first {
                context.logger.error(
                    "inconsistent metric help text",
                    metadata: [
                        "metric": "\(family.name)", "original_help_text": "\(first)", "new_help_text": "\(help)",
                        "file": "\(existing.files[0])",
                    ]
                )
                self.errored = true
                continue
            }
            if family.type != existing.type {
                context.logger.error(
                    "inconsistent metric type",
                    metadata: [
                        "metric": "\(family.name)", "original_type": "\(existing.type)", "new_type": "\(family.type)",
                        "file": "\(file)",
                    ]
                )
                self.errored = true
                continue
            }
            existing.help = existing.help ?? family.help
            existing.files.append(file)
            existing.parts.append((file, family.samples))
            self.families[family.name] = existing
        }
    }

    /// Writes the families sorted by name, their series sorted by label values (node_exporter's order).
    mutating func write(into writer: inout MetricWriter, context: ScrapeContext) {
        for name in self.families.keys.sorted() {
            let family = self.families[name]!
            let series = textfileSeries(family)
            if series.duplicates > 0 {
                context.logger.error(
                    "textfile metric collected twice with the same labels; first kept",
                    metadata: ["metric": "\(name)", "count": "\(series.duplicates)"]
                )
                self.errored = true
            }
            guard !series.list.isEmpty else { continue }
            let help = family.help ?? "Metric read from " + family.files.joined(separator: ", ")
            let type: MetricType
            switch family.type {
            case "counter": type = .counter
            case "gauge": type = .gauge
            case "histogram": type = .histogram
            case "summary": type = .summary
            default: type = .untyped
            }
            writer.family(name, help: help, type: type)
            for entry in series.list {
                writeSeries(entry, type: type, into: &writer)
            }
        }
    }
}

/// One series: its labels (padded, sorted by name) and its value, or its buckets / quantiles.
struct TextfileSeries {
    var labels: [(name: String, value: String)]
    var value: Double = 0
    var buckets: [Double: Double] = [:]
    var quantiles: [Double: Double] = [:]
    var sum: Double = 0
    var count: Double = 0
}

/// The series of a merged family: label sets padded to the family's union with empty values, samples of
/// a histogram or summary grouped per file and label set; a series already seen is dropped.
func textfileSeries(_ family: TextfileMerger.Family) -> (list: [TextfileSeries], duplicates: Int) {
    let grouped = family.type == "histogram" || family.type == "summary"
    let special: Set<String> = grouped ? ["le", "quantile"] : []
    var labelNames = Set<String>()
    for part in family.parts {
        for sample in part.samples {
            for label in sample.labels where !special.contains(label.name) { labelNames.insert(label.name) }
        }
    }
    let names = labelNames.sorted()
    func values(of sample: ParsedSample) -> [String] {
        names.map { sample[label: $0] ?? "" }
    }
    var list: [TextfileSeries] = []
    var indexByValues: [[String]: Int] = [:]
    var duplicates = 0
    for part in family.parts {
        var partIndex: [[String]: Int] = [:]
        for sample in part.samples {
            let key = values(of: sample)
            if !grouped {
                guard indexByValues[key] == nil else {
                    duplicates += 1
                    continue
                }
                indexByValues[key] = list.count
                list.append(TextfileSeries(labels: zip(names, key).map { ($0, $1) }, value: sample.value))
                continue
            }
            let index: Int
            if let known = partIndex[key] {
                index = known
            } else if indexByValues[key] != nil {
                duplicates += 1
                continue
            } else {
                index = list.count
                partIndex[key] = index
                list.append(TextfileSeries(labels: zip(names, key).map { ($0, $1) }))
            }
            switch sample.name {
            case family.name + "_sum": list[index].sum = sample.value
            case family.name + "_count": list[index].count = sample.value
            case family.name + "_bucket":
                if let bound = sample[label: "le"].flatMap({ ArraySlice($0.utf8).parseDouble() }) {
                    list[index].buckets[bound] = sample.value
                }
            default:
                if let quantile = sample[label: "quantile"].flatMap({ ArraySlice($0.utf8).parseDouble() }) {
                    list[index].quantiles[quantile] = sample.value
                }
            }
        }
        for (key, index) in partIndex { indexByValues[key] = index }
    }
    list.sort { lhs, rhs in lhs.labels.map(\.value).lexicographicallyPrecedes(rhs.labels.map(\.value)) }
    return (list, duplicates)
}

private func writeSeries(_ series: TextfileSeries, type: MetricType, into writer: inout MetricWriter) {
    switch type {
    case .histogram:
        // Counts are integers in Go's model; a missing +Inf bucket is the sample count.
        var buckets = series.buckets.mapValues(integerCount)
        if buckets[.infinity] == nil { buckets[.infinity] = integerCount(series.count) }
        for (bound, count) in buckets.sorted(by: { $0.key < $1.key }) {
            writer.sample(suffix: "_bucket", count, dynamicLabels: series.labels + [("le", formatFloat(bound))])
        }
        writer.sample(suffix: "_sum", series.sum, dynamicLabels: series.labels)
        writer.sample(suffix: "_count", integerCount(series.count), dynamicLabels: series.labels)
    case .summary:
        for (quantile, value) in series.quantiles.sorted(by: { $0.key < $1.key }) {
            writer.sample(value, dynamicLabels: series.labels + [("quantile", formatFloat(quantile))])
        }
        writer.sample(suffix: "_sum", series.sum, dynamicLabels: series.labels)
        writer.sample(suffix: "_count", integerCount(series.count), dynamicLabels: series.labels)
    default:
        writer.sample(series.value, dynamicLabels: series.labels)
    }
}

/// A count as Go's parser stores it: truncated to an unsigned integer.
private func integerCount(_ value: Double) -> Double {
    value.isFinite && value > 0 ? value.rounded(.towardZero) : 0
}

private func formatFloat(_ value: Double) -> String {
    var bytes: [UInt8] = []
    appendFloat(value, to: &bytes)
    return String(decoding: bytes, as: UTF8.self)
}

/// Each pattern's matches (sorted), or the pattern itself when nothing matches (a plain directory).
func expandGlobs(_ patterns: [String]) -> [String] {
    var paths: [String] = []
    for pattern in patterns where !pattern.isEmpty {
        var matches = glob_t()
        defer { globfree(&matches) }
        guard glob(pattern, GLOB_NOCHECK, nil, &matches) == 0 else {
            paths.append(pattern)
            continue
        }
        for index in 0..<Int(matches.gl_pathc) {
            if let path = matches.gl_pathv[index] { paths.append(String(cString: path)) }
        }
    }
    return paths
}

/// A path as Go's `filepath.Clean` writes it: no `.`, `..` resolved lexically, no doubled or trailing
/// slashes (the `file` label of `node_textfile_mtime_seconds` is built this way).
func cleanPath(_ path: String) -> String {
    let rooted = path.hasPrefix("/")
    var parts: [Substring] = []
    for part in path.split(separator: "/") {
        switch part {
        case ".": continue
        case "..":
            if let last = parts.last, last != ".." {
                parts.removeLast()
            } else if !rooted {
                parts.append(part)
            }
        default: parts.append(part)
        }
    }
    let joined = parts.joined(separator: "/")
    if rooted { return "/" + joined }
    return joined.isEmpty ? "." : joined
}
