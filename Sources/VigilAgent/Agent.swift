import Collectors
public import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import UnixSignals
public import VigilCore
import VigilForward
import VigilJournal

#if canImport(Glibc)
import Glibc
#endif

/// vigil's version, as `--version`, the landing page and `vigil_build_info` show it.
public let vigilVersion = "0.1.0"

let versionText = "vigil, version \(vigilVersion)\n"

/// The assembled agent: collectors, scraper and HTTP endpoint, built from a configuration.
public final class Agent: Sendable {
    public let scraper: Scraper
    let server: MetricsServer
    let group: MultiThreadedEventLoopGroup
    let logger: Logger
    let configuration: LoadedConfiguration
    /// Where the event loop and the collector lanes run (`--runtime.gomaxprocs`); nil: any CPU.
    let scrapeCPUs: CPUSet?
    /// The forward output and the log pipeline, in start order; empty when nothing is forwarded.
    let logServices: [any Service]
    /// What start-up says about the journal (forwarded where, dry run, or off).
    let logSummary: String
    private let serviceGroup = Mutex<ServiceGroup?>(nil)

    /// Builds every component; configuration mistakes found on the way (a bad regex, include and
    /// exclude both set) are all reported together.
    public init(configuration: LoadedConfiguration, logger: Logger) throws(ConfigurationErrors) {
        let settings = configuration.settings
        let paths = PathRoots(
            procfs: settings.string(AgentOption.procfs),
            sysfs: settings.string(AgentOption.sysfs),
            rootfs: settings.string(AgentOption.rootfs),
            udevData: settings.string(AgentOption.udevData)
        )
        var entries: [Scraper.Entry] = []
        var errors: [ConfigurationError] = []
        let setup = CollectorSetup(settings: settings, paths: paths, logger: logger)
        for descriptor in CollectorCatalog.all where settings.bool("collector.\(descriptor.name)") {
            do {
                entries.append(Scraper.Entry(name: descriptor.name, collector: try descriptor.make(setup)))
            } catch let error as ConfigurationError {
                errors.append(error)
            } catch {
                errors.append(settings.error("collector.\(descriptor.name)", "\(error)"))
            }
        }
        var logSetup: LogSetup?
        do {
            logSetup = try LogSetup(configuration)
        } catch {
            errors.append(contentsOf: error.errors)
        }
        guard errors.isEmpty, let logSetup else { throw ConfigurationErrors(errors: errors) }
        let scrapeCPUs = CPUSet.ofProcess()?.first(settings.integer(AgentOption.gomaxprocs))
        self.scraper = Scraper(
            entries: entries,
            knownNames: Set(CollectorCatalog.all.map(\.name)),
            paths: paths,
            logger: logger,
            cpus: scrapeCPUs,
            timeout: settings.duration(AgentOption.collectorTimeout)
        )
        self.scraper.addSource(BuildInfo())
        if !settings.bool(AgentOption.disableExporterMetrics) {
            self.scraper.addSource(ProcessMetrics())
        }
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        if let scrapeCPUs {
            // Before the server binds: the event loop runs its tasks in order.
            self.group.next().execute {
                guard let error = scrapeCPUs.confineCurrentThread() else { return }
                logger.warning("The event loop is not confined to CPUs \(scrapeCPUs.cpus): errno \(error)")
            }
        }
        self.scrapeCPUs = scrapeCPUs
        self.server = MetricsServer(
            addresses: settings.strings(AgentOption.listenAddress).compactMap(ListenAddress.init),
            telemetryPath: settings.string(AgentOption.telemetryPath),
            maxRequests: settings.integer(AgentOption.maxRequests),
            scraper: self.scraper,
            group: self.group,
            logger: logger
        )
        self.logServices = try Self.makeLogServices(logSetup, configuration, self.scraper, self.group, logger)
        self.logSummary = logSetup.summary
        self.logger = logger
        self.configuration = configuration
    }

    /// The forward output (or the dry-run printer) and the log pipeline. The output comes first: services
    /// stop in reverse order, so the pipeline, stopped before it, can still have its last batches
    /// acknowledged and commit them.
    private static func makeLogServices(
        _ setup: LogSetup,
        _ configuration: LoadedConfiguration,
        _ scraper: Scraper,
        _ group: any EventLoopGroup,
        _ logger: Logger
    ) throws(ConfigurationErrors) -> [any Service] {
        let origin: SettingOrigin = configuration.file.map { .file(path: $0, line: 0) } ?? .commandLine
        var services: [any Service] = []
        let sink: any BatchSink
        if setup.dryRun {
            sink = DryRunSink()
        } else if let forward = setup.forward {
            do {
                let output = try ForwardOutput(configuration: forward, logger: logger, eventLoopGroup: group)
                scraper.addSource(output.metrics)
                services.append(output)
                sink = output
            } catch {
                throw ConfigurationErrors(errors: [
                    ConfigurationError(origin: origin, key: "forward", reason: "\(error)")
                ])
            }
        } else {
            return []
        }
        do {
            let pipeline = try LogPipeline(
                configuration: setup.journal,
                sink: sink,
                maxBatchBytes: setup.maxBatchBytes,
                logger: logger
            )
            scraper.addSource(pipeline.metrics)
            services.append(pipeline)
        } catch {
            throw ConfigurationErrors(errors: [
                ConfigurationError(origin: origin, key: "journal.tag", reason: "\(error)")
            ])
        }
        return services
    }

    /// Runs until SIGTERM or SIGINT (or ``shutdown()``), then shuts down gracefully: the HTTP endpoint
    /// stops first.
    ///
    /// - Parameter handlingSignals: false where the process' signals are not the agent's (tests).
    public func run(handlingSignals: Bool = true) async throws {
        self.logger.info(
            "Starting vigil",
            metadata: [
                "version": "\(vigilVersion)", "collectors": "\(self.scraper.collectorNames.joined(separator: ","))",
                "scrape_cpus": "\(self.scrapeCPUs.map { $0.cpus.map(String.init).joined(separator: ",") } ?? "any")",
            ]
        )
        self.logger.info("\(self.logSummary)")
        // Reverse order on shutdown: HTTP stops first, then the log pipeline flushes and commits its
        // cursor, then the forward output closes its connections.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: self.logServices.map { .init(service: $0) } + [.init(service: self.server)],
                gracefulShutdownSignals: handlingSignals ? [.sigterm, .sigint] : [],
                logger: self.logger
            )
        )
        self.serviceGroup.withLock { $0 = group }
        do {
            try await group.run()
        } catch {
            try? await self.group.shutdownGracefully()
            throw error
        }
        try await self.group.shutdownGracefully()
    }

    /// Starts a graceful shutdown, as SIGTERM does.
    public func shutdown() async {
        await self.serviceGroup.withLock { $0 }?.triggerGracefulShutdown()
    }

    /// The addresses the endpoint listens on, once it does (for tests that bind port 0).
    public func listeningPorts() async -> [Int] {
        await self.server.listeningAddresses().compactMap(\.port)
    }
}

/// The `vigil` command: parses the command line, then runs the agent or checks a configuration.
/// Returns the process exit status.
public func vigilMain(arguments: [String]) async -> Int32 {
    let invocation: Invocation
    do {
        invocation = try ConfigurationLoader().invocation(arguments: arguments)
    } catch {
        for line in error.errors { printError("vigil: error: \(line)") }
        return 1
    }
    switch invocation {
    case .help(let text):
        print(text, terminator: "")
        return 0
    case .version(let text):
        print(text, terminator: "")
        return 0
    case .checkConfig(let configuration):
        let logger = makeLogger(configuration.settings)
        do {
            _ = try Agent(configuration: configuration, logger: logger)
        } catch {
            for line in error.errors { printError("vigil: error: \(line)") }
            return 1
        }
        for warning in configuration.warnings { printError("vigil: warning: \(warning)") }
        print("\(configuration.file ?? "configuration"): OK")
        return 0
    case .run(let configuration):
        // node_exporter's packaged units send SIGHUP on reload; it must not kill the agent.
        signal(SIGHUP, SIG_IGN)
        let logger = makeLogger(configuration.settings)
        for warning in configuration.warnings { logger.warning("\(warning)") }
        do {
            let agent = try Agent(configuration: configuration, logger: logger)
            try await agent.run()
            return 0
        } catch let errors as ConfigurationErrors {
            for line in errors.errors { printError("vigil: error: \(line)") }
            return 1
        } catch {
            logger.critical("vigil stopped", metadata: ["err": "\(error)"])
            return 1
        }
    }
}

func makeLogger(_ settings: Settings) -> Logger {
    let level = LogLevelName(rawValue: settings.string(AgentOption.logLevel))?.level ?? .info
    let format: LineLogHandler.Format = settings.string(AgentOption.logFormat) == "json" ? .json : .logfmt
    return Logger(label: "vigil") { _ in LineLogHandler(level: level, format: format) }
}

private func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
