import VigilCore
import VigilForward
import VigilJournal

/// What the configuration asks of the log pipeline: the journal settings (`journal:`), where batches go
/// (`forward:` or `--forward.target`, or the dry run), and whether anything is forwarded at all.
struct LogSetup {
    var journal: JournalConfiguration
    /// Nil when no forward target is configured.
    var forward: ForwardConfiguration?
    /// Print records instead of sending them (`--journal.dry-run` or `journal.dry_run`).
    var dryRun: Bool

    init(_ configuration: LoadedConfiguration) throws(ConfigurationErrors) {
        let settings = configuration.settings
        let parser = SectionParser(file: configuration.file ?? "configuration")
        let (journal, dryRun) = parseJournalSection(configuration.sections["journal"], parser: parser)
        self.journal = journal
        self.forward = parseForwardSection(
            configuration.sections["forward"],
            flagTargets: settings.strings(AgentOption.forwardTarget),
            settings: settings,
            parser: parser
        )
        self.dryRun = dryRun || settings.bool(AgentOption.journalDryRun)
        if self.dryRun { self.journal.cursorFile = nil }
        guard parser.errors.isEmpty else { throw ConfigurationErrors(errors: parser.errors) }
    }

    /// Whether the log pipeline runs.
    var isEnabled: Bool { self.dryRun || self.forward != nil }

    /// The batch size limit: the forward output's, or the journal's own in a dry run.
    var maxBatchBytes: Int { self.forward?.maxBatchBytes ?? self.journal.batching.maxBytes }

    /// The start-up line that says what happens to the journal.
    var summary: String {
        if self.dryRun {
            return
                "journal dry run: records are printed on standard output as JSON lines; nothing is sent and the cursor file is not used"
        }
        guard let forward = self.forward else {
            return
                "log forwarding is off: no forward target is configured (give --forward.target=HOST:PORT or forward.targets in the configuration file)"
        }
        return "forwarding the journal to \(forward.targets.map(\.label).joined(separator: ", "))"
    }
}
