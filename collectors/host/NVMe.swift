import VigilCore

/// Each NVMe controller's model, serial, firmware revision and state from `/sys/class/nvme/nvme*/` as
/// labels of `node_nvme_info`. Without NVMe controllers there is no data.
struct NVMeCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "nvme",
        enabledByDefault: true,
        help: "NVMe controllers' model, serial, firmware and state from /sys/class/nvme"
    ) { setup in
        NVMeCollector(directory: setup.paths.sys("class/nvme"))
    }

    let directory: String

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        guard FileSystem.isDirectory(self.directory) else {
            throw CollectorError.noData("\(self.directory) does not exist")
        }
        var started = false
        for device in try FileSystem.entries(of: self.directory).sorted() {
            let path = self.directory + "/" + device
            do {
                func attribute(_ name: String) throws(FileError) -> String {
                    try context.reader.readTrimmed(path + "/" + name).string
                }
                let (firmware, model, serial, state) = (
                    try attribute("firmware_rev"), try attribute("model"), try attribute("serial"),
                    try attribute("state")
                )
                if !started {
                    writer.family(infoFamily)
                    started = true
                }
                writer.sample(
                    1,
                    ("device", device),
                    ("firmware_revision", firmware),
                    ("model", model),
                    ("serial", serial),
                    ("state", state)
                )
            } catch {
                context.recordFailure("\(error)")
            }
        }
    }
}

private let infoFamily = MetricFamily(
    "node_nvme_info",
    help: "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
    type: .gauge
)
