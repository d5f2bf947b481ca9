import Synchronization
import VigilCore

/// The machine's firmware, board, chassis and product identity from `/sys/class/dmi/id` as labels of
/// `node_dmi_info`. Read at the first scrape and kept: it changes only with a firmware update, which
/// takes a reboot. Files only root may read (serials, the product UUID) are left out for other users;
/// machines without DMI (many virtual ones, most ARM boards) have no data.
struct DMICollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "dmi",
        enabledByDefault: true,
        help: "firmware, board and product identity from /sys/class/dmi/id"
    ) { setup in
        DMICollector(directory: setup.paths.sys("class/dmi/id"))
    }

    let directory: String
    private let labels = CollectorState<[(name: String, value: String)]?>(nil)

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let kept = self.labels.value.withLock { $0 }
        let labels = try kept ?? readDMILabels(self.directory, reader: context.reader)
        if kept == nil { self.labels.value.withLock { $0 = labels } }
        guard !labels.isEmpty else { throw CollectorError.noData("\(self.directory) does not exist") }
        writer.family(infoFamily)
        writer.sample(1, dynamicLabels: labels)
    }
}

/// node_exporter's label for each file it reads, sorted by label.
private let dmiLabels: [(label: String, file: String)] = [
    ("bios_date", "bios_date"), ("bios_release", "bios_release"), ("bios_vendor", "bios_vendor"),
    ("bios_version", "bios_version"), ("board_asset_tag", "board_asset_tag"), ("board_name", "board_name"),
    ("board_serial", "board_serial"), ("board_vendor", "board_vendor"), ("board_version", "board_version"),
    ("chassis_asset_tag", "chassis_asset_tag"), ("chassis_serial", "chassis_serial"),
    ("chassis_vendor", "chassis_vendor"), ("chassis_version", "chassis_version"),
    ("product_family", "product_family"), ("product_name", "product_name"), ("product_serial", "product_serial"),
    ("product_sku", "product_sku"), ("product_uuid", "product_uuid"), ("product_version", "product_version"),
    ("system_vendor", "sys_vendor"),
]

/// The labels of the files that exist and may be read; none when the directory does not exist.
/// Invalid UTF-8 (some firmware writes Latin-1) becomes U+FFFD, as node_exporter writes it.
private func readDMILabels(_ directory: String, reader: FileReader) throws -> [(name: String, value: String)] {
    try dmiLabels.compactMap { label, file in
        try reader.readTrimmedIfReadable(directory + "/" + file).map { (label, $0.string) }
    }
}

private let infoFamily = MetricFamily(
    "node_dmi_info",
    help: "A metric with a constant '1' value labeled by "
        + dmiLabels.map(\.label).joined(separator: ", ") + " if provided by DMI.",
    type: .gauge
)
