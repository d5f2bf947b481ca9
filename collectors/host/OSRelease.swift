import Synchronization
import VigilCore

/// The distribution from `<rootfs>/etc/os-release` (fallback `<rootfs>/usr/lib/os-release`, as
/// os-release(5) says): `node_os_info`, `node_os_version`, `node_os_support_end_timestamp_seconds`.
///
/// The file changes only with an upgrade, so its parsed content is kept until its modification time
/// changes: a scrape costs one `stat`.
struct OSReleaseCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "os",
        enabledByDefault: true,
        help: "operating system release from os-release"
    ) { _ in
        OSReleaseCollector()
    }

    private struct Cached: Sendable {
        var path: String
        var modified: Double
        var release: OSRelease
    }

    private let cache = CollectorState<Cached?>(nil)

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let release = try self.currentRelease(context: context)
        writer.family(infoFamily)
        writer.sample(
            1,
            ("build_id", release["BUILD_ID"]),
            ("id", release["ID"]),
            ("id_like", release["ID_LIKE"]),
            ("image_id", release["IMAGE_ID"]),
            ("image_version", release["IMAGE_VERSION"]),
            ("name", release["NAME"]),
            ("pretty_name", release["PRETTY_NAME"]),
            ("variant", release["VARIANT"]),
            ("variant_id", release["VARIANT_ID"]),
            ("version", release["VERSION"]),
            ("version_codename", release["VERSION_CODENAME"]),
            ("version_id", release["VERSION_ID"])
        )
        if let supportEnd = release.fields["SUPPORT_END"] {
            if let timestamp = parseSupportEnd(supportEnd) {
                writer.family(supportEndFamily)
                writer.sample(timestamp)
            } else {
                context.recordFailure("SUPPORT_END \"\(supportEnd)\" is not a YYYY-MM-DD date")
            }
        }
        if let version = release.majorMinorVersion, version > 0 {
            writer.family(versionFamily)
            writer.sample(version, ("id", release["ID"]), ("id_like", release["ID_LIKE"]), ("name", release["NAME"]))
        }
    }

    /// The parsed file, from the cache while its path and modification time are unchanged.
    private func currentRelease(context: ScrapeContext) throws -> OSRelease {
        let candidates = [context.paths.root("etc/os-release"), context.paths.root("usr/lib/os-release")]
        for path in candidates {
            guard let modified = try modificationTimeIfPresent(path) else { continue }
            if let cached = self.cache.value.withLock({ $0 }), cached.path == path, cached.modified == modified {
                return cached.release
            }
            let release = OSRelease(fields: parseOSRelease(try context.reader.read(path)))
            self.cache.value.withLock { $0 = Cached(path: path, modified: modified, release: release) }
            return release
        }
        throw CollectorError.noData("no os-release file in \(candidates)")
    }
}

private let infoFamily = MetricFamily(
    "node_os_info",
    help:
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
    type: .gauge
)
private let supportEndFamily = MetricFamily(
    "node_os_support_end_timestamp_seconds",
    help: "Metric containing the end-of-life date timestamp of the OS.",
    type: .gauge
)
private let versionFamily = MetricFamily(
    "node_os_version",
    help: "Metric containing the major.minor part of the OS version.",
    type: .gauge
)

private func modificationTimeIfPresent(_ path: String) throws(FileError) -> Double? {
    do {
        return try FileSystem.modificationTime(path)
    } catch  where error.isNotFound {
        return nil
    }
}

/// The variables of an os-release file.
struct OSRelease: Sendable, Equatable {
    var fields: [String: String]

    /// A variable, or "" when the file does not set it (as the label of an absent variable reads).
    subscript(key: String) -> String { self.fields[key] ?? "" }

    /// The leading `major[.minor]` of VERSION_ID as a number (`22.04` for `22.04.3`), or nil when it
    /// does not start with a digit.
    var majorMinorVersion: Double? {
        let bytes = Array(self["VERSION_ID"].utf8)
        var end = 0
        while end < bytes.count, bytes[end] >= UInt8(ascii: "0"), bytes[end] <= UInt8(ascii: "9") { end += 1 }
        guard end > 0 else { return nil }
        if end < bytes.count, bytes[end] == UInt8(ascii: ".") {
            end += 1
            while end < bytes.count, bytes[end] >= UInt8(ascii: "0"), bytes[end] <= UInt8(ascii: "9") { end += 1 }
        }
        return ArraySlice(bytes[..<end]).parseDouble()
    }
}

/// Parses os-release's shell-style assignments: `KEY=value`, `KEY="double quoted"`, `KEY='single'`,
/// comments, an optional `export`; quoted parts may follow each other. Inside double quotes `\"`, `\\`,
/// `\$`, `` \` ``, `\n` and `\t` are escapes. A line that is not a valid assignment (no `=`, a bad key,
/// an unmatched quote) is skipped; the other variables are kept.
func parseOSRelease(_ bytes: ArraySlice<UInt8>) -> [String: String] {
    var fields: [String: String] = [:]
    for line in bytes.lines {
        let trimmed = line.trimmed()
        guard trimmed.first != UInt8(ascii: "#"), let (rawKey, rawValue) = trimmed.splitOnce(UInt8(ascii: "="))
        else { continue }
        var key = rawKey.trimmed()
        if key.hasPrefix("export ") { key = key.dropFirst(7).trimmed() }
        guard isShellVariableName(key), let value = parseShellValue(rawValue.trimmed()) else { continue }
        fields[key.string] = value
    }
    return fields
}

private func isShellVariableName(_ name: ArraySlice<UInt8>) -> Bool {
    guard let first = name.first, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else { return false }
    return name.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
            true
        default: false
        }
    }
}

private func parseShellValue(_ value: ArraySlice<UInt8>) -> String? {
    enum Mode {
        case plain
        case double
        case escape
        case single
    }
    var mode = Mode.plain
    var decoded: [UInt8] = []
    // Unquoted whitespace before a trailing comment is not part of the value.
    var significant = 0
    loop: for byte in value {
        switch mode {
        case .plain:
            switch byte {
            case UInt8(ascii: "\""): mode = .double
            case UInt8(ascii: "'"): mode = .single
            case UInt8(ascii: "#"):
                decoded.removeSubrange(significant...)
                break loop
            case UInt8(ascii: " "), UInt8(ascii: "\t"): decoded.append(byte)
            default:
                decoded.append(byte)
                significant = decoded.count
            }
        case .double:
            switch byte {
            case UInt8(ascii: "\""): mode = .plain
            case UInt8(ascii: "\\"): mode = .escape
            default:
                decoded.append(byte)
                significant = decoded.count
            }
        case .escape:
            switch byte {
            case UInt8(ascii: "n"): decoded.append(UInt8(ascii: "\n"))
            case UInt8(ascii: "t"): decoded.append(UInt8(ascii: "\t"))
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "$"), UInt8(ascii: "`"): decoded.append(byte)
            default: decoded.append(contentsOf: [UInt8(ascii: "\\"), byte])
            }
            significant = decoded.count
            mode = .double
        case .single:
            if byte == UInt8(ascii: "'") {
                mode = .plain
            } else {
                decoded.append(byte)
                significant = decoded.count
            }
        }
    }
    guard mode == .plain else { return nil }
    return String(decoding: decoded, as: UTF8.self)
}

/// SUPPORT_END (`2026-06-10`) as seconds since the epoch at midnight UTC, or nil when it is not a valid
/// `YYYY-MM-DD` date.
func parseSupportEnd(_ text: String) -> Double? {
    let parts = text.utf8.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
        let year = ArraySlice(parts[0]).parseUInt64(), let month = ArraySlice(parts[1]).parseUInt64(),
        let day = ArraySlice(parts[2]).parseUInt64(), (1...12).contains(month), day >= 1
    else { return nil }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    let monthDays: [UInt64] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    guard day <= monthDays[Int(month) - 1] else { return nil }
    return Double(daysFromCivil(year: Int64(year), month: Int64(month), day: Int64(day))) * 86400
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
private func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
}
