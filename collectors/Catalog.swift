public import VigilCore

/// Every collector vigil has, in one place: its name, whether it runs by default, its options and its
/// factory. The command line, the configuration file and `collect[]` all resolve names against this list.
public enum CollectorCatalog {
    public static let all: [CollectorDescriptor] = [
        CPUCollector.descriptor,
        CpufreqCollector.descriptor,
        EdacCollector.descriptor,
        DiskstatsCollector.descriptor,
        DMICollector.descriptor,
        EntropyCollector.descriptor,
        FilefdCollector.descriptor,
        FilesystemCollector.descriptor,
        HwmonCollector.descriptor,
        IPVSCollector.descriptor,
        LoadavgCollector.descriptor,
        MdadmCollector.descriptor,
        MeminfoCollector.descriptor,
        NetDevCollector.descriptor,
        NetClassCollector.descriptor,
        NFSCollector.descriptor,
        NVMeCollector.descriptor,
        NetstatCollector.descriptor,
        SockstatCollector.descriptor,
        ConntrackCollector.descriptor,
        UDPQueuesCollector.descriptor,
        ARPCollector.descriptor,
        BondingCollector.descriptor,
        ContainersCollector.descriptor,
        OSReleaseCollector.descriptor,
        PressureCollector.descriptor,
        RAPLCollector.descriptor,
        SchedstatCollector.descriptor,
        SoftnetCollector.descriptor,
        StatCollector.descriptor,
        SystemdCollector.descriptor,
        TextfileCollector.descriptor,
        ThermalZoneCollector.descriptor,
        TimeCollector.descriptor,
        TimexCollector.descriptor,
        UnameCollector.descriptor,
        VmstatCollector.descriptor,
        XFSCollector.descriptor,
    ]

    /// Every collector option (besides the on/off switches), for the command line and the file.
    public static var options: [OptionSpec] {
        all.flatMap { [$0.enableOption] + $0.options }
    }
}
