import Logging
import Testing
import VigilCore

@testable import Collectors

/// Runs the textfile collector on `Fixtures/textfile/<case>` and makes paths relative to `Fixtures/`,
/// as in the golden files.
private func collectTextfiles(_ directories: [String]) throws -> Collected {
    let collected = try collect(
        TextfileCollector.descriptor,
        roots: PathRoots(),
        settings: ["collector.textfile.directory": .strings(directories)]
    )
    return collected
}

private func relative(_ families: [ParsedFamily]) -> [ParsedFamily] {
    families.mappingStrings { $0.replacingOccurrences(of: fixturesDirectory + "/", with: "") }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        self.split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

@Suite struct TextfileTests {
    @Test(arguments: ["good", "syntax-error", "timestamps", "missing-help", "label-sets"])
    func matchesNodeExporter(_ name: String) throws {
        let collected = try collectTextfiles([fixturesDirectory + "/textfile/" + name])
        expectSameFamilies(
            relative(collected.families),
            try golden("textfile-" + name),
            ignoringValuesOf: ["node_textfile_mtime_seconds"]
        )
    }

    @Test func writesHistogramsAndSummariesFaithfully() throws {
        let collected = try collectTextfiles([fixturesDirectory + "/textfile/good"])
        for line in [
            #"backup_duration_seconds_bucket{job="home",le="1000"} 1020"#,
            #"backup_duration_seconds_bucket{job="home",le="+Inf"} 1027"#,
            #"backup_duration_seconds_sum{job="home"} 190000.5"#,
            "# TYPE backup_size_bytes summary",
            #"backup_size_bytes{job="home",quantile="0.99"} 2.5e+09"#,
            #"backup_size_bytes_count{job="home"} 1027"#,
            "# TYPE backup_runs_total counter",
        ] {
            #expect(collected.text.contains(line + "\n"), "\(line)")
        }
        #expect(collected.value("node_textfile_scrape_error") == 0)
        let mtime = try #require(
            collected.value("node_textfile_mtime_seconds", ["file": fixturesDirectory + "/textfile/good/apt.prom"])
        )
        #expect(
            mtime
                == (try FileSystem.modificationTime(fixturesDirectory + "/textfile/good/apt.prom")).rounded(.towardZero)
        )
    }

    @Test func skippedFilesSetTheErrorAndGetNoMtime() throws {
        for name in ["syntax-error", "timestamps"] {
            let collected = try collectTextfiles([fixturesDirectory + "/textfile/" + name])
            #expect(collected.value("node_textfile_scrape_error") == 1)
            let files = collected[family: "node_textfile_mtime_seconds"]?.samples.map { $0[label: "file"]! } ?? []
            #expect(files == [fixturesDirectory + "/textfile/\(name)/good.prom"])
            #expect(collected[family: "broken_metric"] == nil && collected[family: "stamped_metric"] == nil)
        }
    }

    /// node_exporter 1.12: a conflicting HELP is an error and the first file wins (1.5.0 dropped the
    /// second file's family without setting the error).
    @Test func conflictingHelpIsAnErrorAndTheFirstFileWins() throws {
        let collected = try collectTextfiles([fixturesDirectory + "/textfile/conflicting-help"])
        let golden = try golden("textfile-conflicting-help").dropping(["node_textfile_scrape_error"])
        expectSameFamilies(
            relative(collected.families).dropping(["node_textfile_scrape_error"]),
            golden,
            ignoringValuesOf: ["node_textfile_mtime_seconds"]
        )
        #expect(collected[family: "shared_metric"]?.help == "First help text.")
        #expect(collected.value("shared_metric", ["file": "b"]) == nil)
        #expect(collected.value("other_metric") == 3)
        #expect(collected.value("node_textfile_scrape_error") == 1)
    }

    @Test func sameFamilyInSeveralDirectoriesAndGlobs() throws {
        let collected = try collectTextfiles([
            fixturesDirectory + "/textfile/missing-*", fixturesDirectory + "/textfile/label-sets/",
        ])
        #expect(
            collected[family: "shared_metric"]?.help
                == "Metric read from \(fixturesDirectory)/textfile/missing-help/a.prom, \(fixturesDirectory)/textfile/missing-help/b.prom"
        )
        #expect(collected.value("labelled", ["a": "", "b": ""]) == 3)
        #expect(collected[family: "node_textfile_mtime_seconds"]?.samples.count == 3)
        #expect(collected.value("node_textfile_scrape_error") == 0)
    }

    @Test func noDirectoryStillReportsNoError() throws {
        let collected = try collectTextfiles([])
        #expect(collected.families.map(\.name) == ["node_textfile_scrape_error"])
        #expect(collected.value("node_textfile_scrape_error") == 0)
    }

    @Test func anUnreadableDirectoryIsAnError() throws {
        let collected = try collectTextfiles([fixturesDirectory + "/textfile/does-not-exist"])
        #expect(collected.value("node_textfile_scrape_error") == 1)
    }

    @Test func mergesAcrossFilesPadsLabelsAndRejectsWhatWouldBreakTheOutput() throws {
        let tree = try TemporaryTree(files: [
            "a.prom": """
            # HELP merged Given once.
            # TYPE merged gauge
            merged{x="1"} 1
            node_textfile_scrape_error 5
            # TYPE twice counter
            twice_total 1
            twice_total 2

            """,
            "b.prom": """
            # TYPE merged gauge
            merged{y="2"} 2
            merged{x="1"} 9
            # TYPE typed_differently counter
            typed_differently 1
            vigil_scrape_duration_seconds 1

            """,
            "c.prom": """
            # TYPE typed_differently gauge
            typed_differently 2
            # TYPE hist histogram
            hist_bucket{le="nope"} 1

            """,
        ])
        let collected = try collectTextfiles([tree.path])
        #expect(collected[family: "merged"]?.help == "Given once.")
        #expect(collected.value("merged", ["x": "1", "y": ""]) == 1)
        #expect(collected.value("merged", ["x": "", "y": "2"]) == 2)
        #expect(collected[family: "merged"]?.samples.count == 2)
        #expect(collected.value("typed_differently") == 1)
        #expect(collected[family: "hist"] == nil)
        #expect(collected[family: "vigil_scrape_duration_seconds"] == nil)
        #expect(collected.value("node_textfile_scrape_error") == 1)
        #expect(collected[family: "node_textfile_mtime_seconds"]?.samples.count == 2)
    }

    /// One scrape of the textfile collector reading `file` beside `other`, on the fixture tree `tree`.
    private func scrapeTextfile(
        _ file: (name: String, text: String),
        beside other: (name: String, collector: any Collector),
        on tree: String
    ) async throws -> (output: Scraper.Output, families: [ParsedFamily]) {
        let directory = try TemporaryTree(files: [file.name: file.text])
        let roots = fixtureRoots(tree)
        let textfile = try makeCollector(
            TextfileCollector.descriptor,
            roots: roots,
            settings: ["collector.textfile.directory": .strings([directory.path])]
        )
        let scraper = Scraper(
            entries: [
                .init(name: "textfile", collector: textfile), .init(name: other.name, collector: other.collector),
            ],
            knownNames: ["textfile", other.name],
            paths: roots,
            logger: Logger(label: "test")
        )
        let output = await scraper.scrape(format: .text)
        return (output, try parseExposition(output.bytes[...]))
    }

    /// A textfile family with the name of another collector's family would make the family appear
    /// twice in the scrape: the scraper drops it from the textfile output and reports textfile failed.
    @Test func cannotRedefineAnotherCollectorsFamily() async throws {
        let (output, families) = try await self.scrapeTextfile(
            (
                "load.prom",
                "# HELP node_load1 Not the real load.\n# TYPE node_load1 gauge\nnode_load1 99\nown_metric 1\n"
            ),
            beside: ("loadavg", try makeCollector(LoadavgCollector.descriptor, roots: fixtureRoots("debian12"))),
            on: "debian12"
        )
        #expect(families.filter { $0.name == "node_load1" }.count == 1)
        #expect(families.first { $0.name == "node_load1" }?.help == "1m load average.")
        #expect(families.contains { $0.name == "own_metric" })
        #expect(families.contains { $0.name == "node_textfile_scrape_error" })
        #expect(output.failedCollectors == ["textfile"])
    }

    /// The same for a family written while the response is sent (the containers collector's).
    @Test func cannotRedefineAFamilyWrittenWhileSending() async throws {
        let (output, families) = try await self.scrapeTextfile(
            ("usage.prom", "# TYPE container_memory_usage_bytes gauge\ncontainer_memory_usage_bytes 1\nown_metric 1\n"),
            beside: ("containers", ContainersCollector(all: false)),
            on: "cgroup-v2"
        )
        #expect(output.isStreamed)
        #expect(families.filter { $0.name == "container_memory_usage_bytes" }.count == 1)
        #expect(families.first { $0.name == "container_memory_usage_bytes" }?.samples.count ?? 0 > 1)
        #expect(families.contains { $0.name == "own_metric" })
        #expect(output.failedCollectors == ["textfile"])
    }

    @Test func cleansPathsAsGo() {
        #expect(cleanPath("/a/b/") == "/a/b")
        #expect(cleanPath("./dir//x.prom") == "dir/x.prom")
        #expect(cleanPath("/a/./b/../c") == "/a/c")
        #expect(cleanPath("../x") == "../x")
        #expect(cleanPath("/../x") == "/x")
        #expect(cleanPath("") == ".")
    }
}
