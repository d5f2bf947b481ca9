import Testing
import VigilForward

@testable import VigilJournal

@Suite struct EntryEncoderTests {
    /// Encodes fields given as `NAME=value` byte arrays and decodes the event again.
    private func encode(
        _ fields: [[UInt8]],
        format: JournalConfiguration.RecordFormat = .init(),
        realtime: UInt64 = 1_700_000_000_000_005
    ) throws -> (Event, [UInt8], EntryEncoder) {
        var encoder = EntryEncoder(format: format)
        encoder.begin()
        for field in fields { field.withUnsafeBytes { encoder.add(field: $0) } }
        var writer = MessagePackWriter()
        encoder.write(realtime: realtime, into: &writer)
        let events = try decodeEvents(writer.bytes)
        try #require(events.count == 1)
        return (events[0], writer.bytes, encoder)
    }

    private func field(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func writesTheReferenceEventByteForByte() throws {
        // [EventTime(1700000000, 5000), {"a": "b"}]: 5 µs are 5000 ns.
        let (_, bytes, _) = try self.encode([self.field("a=b")])
        #expect(
            bytes == [0x92, 0xD7, 0x00, 0x65, 0x53, 0xF1, 0x00, 0x00, 0x00, 0x13, 0x88, 0x81, 0xA1, 0x61, 0xA1, 0x62]
        )
    }

    @Test func microsecondsBecomeNanoseconds() throws {
        let (event, _, _) = try self.encode([self.field("A=1")], realtime: 1_795_644_900_465_145)
        #expect(event.seconds == 1_795_644_900)
        #expect(event.nanoseconds == 465_145_000)
    }

    @Test func repeatedFieldsBecomeArraysInJournalOrder() throws {
        let (event, _, _) = try self.encode([
            self.field("X=1"), self.field("MESSAGE=hi"), self.field("X=2"), self.field("Y=only"), self.field("X=3"),
        ])
        #expect(event.keys == ["X", "MESSAGE", "Y"])
        #expect(event["X"] == .array([.string([0x31]), .string([0x32]), .string([0x33])]))
        #expect(event.text("Y") == "only")
    }

    @Test func invalidUTF8IsBinaryAndValidUTF8IsString() throws {
        let (event, _, _) = try self.encode([
            [0x42, 0x3D, 0xFF, 0x00], self.field("S=grüße"), [0x4E, 0x3D, 0x00, 0x01], [0x45, 0x3D],
        ])
        #expect(event["B"] == .binary([0xFF, 0x00]))
        #expect(event["S"] == .string(Array("grüße".utf8)))
        #expect(event["N"] == .string([0x00, 0x01]))  // NUL is valid UTF-8
        #expect(event["E"] == .string([]))
    }

    @Test func valuesMayContainEqualsAndNewlines() throws {
        let (event, _, _) = try self.encode([self.field("MESSAGE=a=b\nc=d")])
        #expect(event.text("MESSAGE") == "a=b\nc=d")
    }

    @Test func dataWithoutANameIsIgnored() throws {
        let (event, _, _) = try self.encode([
            self.field("no equals sign"), self.field("=empty name"), self.field("A=1"),
        ])
        #expect(event.keys == ["A"])
    }

    @Test func lowercaseAndStripUnderscoresLikeFluentBit() throws {
        let format = JournalConfiguration.RecordFormat(lowercase: true, stripUnderscores: true)
        let (event, _, _) = try self.encode(
            [self.field("_SYSTEMD_UNIT=a.service"), self.field("__SPECIAL=x"), self.field("MESSAGE=m")],
            format: format
        )
        #expect(event.keys == ["systemd_unit", "_special", "message"])
    }

    @Test func keysThatCollideAfterStrippingBecomeOneArray() throws {
        let format = JournalConfiguration.RecordFormat(stripUnderscores: true)
        let (event, _, _) = try self.encode([self.field("_PID=1"), self.field("PID=2")], format: format)
        #expect(event.keys == ["PID"])
        #expect(event["PID"] == .array([.string([0x31]), .string([0x32])]))
    }

    @Test func includeAndExcludeUseJournalFieldNames() throws {
        let include = JournalConfiguration.RecordFormat(
            lowercase: true,
            includeFields: ["MESSAGE", "_PID", "PRIORITY"],
            excludeFields: ["PRIORITY"]
        )
        let fields = [self.field("MESSAGE=m"), self.field("_PID=7"), self.field("PRIORITY=3"), self.field("_UID=0")]
        let (included, _, _) = try self.encode(fields, format: include)
        #expect(included.keys == ["message", "_pid"])
        let exclude = JournalConfiguration.RecordFormat(excludeFields: ["_UID", "NOT_THERE"])
        let (excluded, _, _) = try self.encode(fields, format: exclude)
        #expect(excluded.keys == ["MESSAGE", "_PID", "PRIORITY"])
    }

    @Test func fieldsBeyondTheLimitAreLeftOutAndCounted() throws {
        let fields = (0..<20).map { self.field("F\($0)=\($0)") }
        let (event, _, encoder) = try self.encode(fields, format: .init(maxFields: 5))
        #expect(event.keys == ["F0", "F1", "F2", "F3", "F4"])
        #expect(encoder.droppedFields == 15)
        #expect(encoder.fieldBytes == fields.reduce(0) { $0 + $1.count })
    }

    @Test func manyFieldsAndManyRepeatsKeepEveryValue() throws {
        // More than the grouping table's initial size, with collisions of repeated keys.
        var fields: [[UInt8]] = []
        for index in 0..<300 { fields.append(self.field("K\(index % 100)=\(index)")) }
        let (event, _, _) = try self.encode(fields)
        #expect(event.keys.count == 100)
        for key in 0..<100 {
            #expect(event["K\(key)"] == .array([key, key + 100, key + 200].map { .string(Array("\($0)".utf8)) }))
        }
    }

    @Test func theEncoderIsReusedAcrossEntries() throws {
        var encoder = EntryEncoder(format: .init())
        var writer = MessagePackWriter()
        for index in 0..<3 {
            encoder.begin()
            for field in [self.field("A=\(index)"), self.field("A=x"), self.field("B=\(index)")] {
                field.withUnsafeBytes { encoder.add(field: $0) }
            }
            encoder.write(realtime: UInt64(index), into: &writer)
        }
        let events = try decodeEvents(writer.bytes)
        #expect(events.map { $0.text("B") } == ["0", "1", "2"])
        #expect(events.map { $0["A"] } == (0..<3).map { .array([.string(Array("\($0)".utf8)), .string([0x78])]) })
    }

    @Test func tagsExpandFieldsWithDefaults() throws {
        let template = try TagTemplate("journal.${_SYSTEMD_UNIT}.${SYSLOG_IDENTIFIER:-none}", defaultValue: "unknown")
        var encoder = EntryEncoder(format: .init(excludeFields: ["_SYSTEMD_UNIT"]), tagFields: template.fields)
        func tag(_ fields: [[UInt8]]) -> String {
            encoder.begin()
            for field in fields { field.withUnsafeBytes { encoder.add(field: $0) } }
            var bytes: [UInt8] = []
            encoder.renderTag(template, into: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }
        #expect(
            tag([self.field("_SYSTEMD_UNIT=a.service"), self.field("SYSLOG_IDENTIFIER=app")]) == "journal.a.service.app"
        )
        #expect(tag([self.field("MESSAGE=x")]) == "journal.unknown.none")
        #expect(tag([self.field("_SYSTEMD_UNIT="), self.field("SYSLOG_IDENTIFIER=")]) == "journal.unknown.none")
        #expect(tag([self.field("_SYSTEMD_UNIT=") + [0xFF]]) == "journal.unknown.none")  // not UTF-8
        // The first value of a repeated field.
        #expect(tag([self.field("_SYSTEMD_UNIT=first"), self.field("_SYSTEMD_UNIT=second")]) == "journal.first.none")
    }

    @Test(arguments: [
        ("${", "without a closing"), ("a.${lower}", "not a journal field name"), ("${A:default}", "expected \":-\""),
        ("${}", "not a journal field name"),
    ])
    func malformedTagsAreRejected(_ template: String, _ reason: String) {
        #expect {
            try TagTemplate(template)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func constantTagsNeedNoFields() throws {
        let template = try TagTemplate("journal.$HOME.x")
        #expect(template.fields.isEmpty)
        #expect(template.constant == "journal.$HOME.x")
    }
}

@Suite struct UTF8ValidationTests {
    @Test func agreesWithTheStandardLibrary() {
        var samples: [[UInt8]] = [
            [], Array("plain ascii text, long enough for the eight-byte path".utf8), Array("grüße 日本 🙂".utf8),
            [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
            [0xF5, 0x80, 0x80, 0x80], [0xE2, 0x82], [0xF0, 0x9F, 0x99], [0x80], [0xFF], [0xEF, 0xBF, 0xBF],
            [0xF4, 0x8F, 0xBF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], Array("12345678é".utf8),
        ]
        var generator = SystemRandomNumberGenerator()
        for length in 0..<400 {
            samples.append((0..<(length % 40)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            // Mostly valid text with a random byte replaced.
            var text = Array("ab ü 日 🙂 cd ef gh ij kl mn".utf8)
            text[Int.random(in: 0..<text.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            samples.append(text)
        }
        for sample in samples {
            let expected = String(validating: sample, as: UTF8.self) != nil
            #expect(sample.withUnsafeBytes { isValidUTF8($0) } == expected, "\(sample)")
        }
    }
}
