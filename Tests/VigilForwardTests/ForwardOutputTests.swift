import Logging
import Testing
import VigilCore
import VigilForward
import VigilForwardTestSupport

/// ForwardOutput against the strict receiver over real TCP on loopback.
@Suite struct ForwardOutputTests {
    @Test func everyBatchArrivesExactlyOnce() async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        let output = try ForwardOutput(
            configuration: testConfiguration([target(receiver)]),
            logger: LogCapture().logger
        )
        let batches = (0..<24).map { makeBatch(count: 1 + $0 % 5, seed: $0) }
        // The pipeline keeps a window of batches in flight.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (batch, _) in batches {
                group.addTask { try await output.deliver(batch) }
            }
            try await group.waitForAll()
        }
        let snapshot = receiver.snapshot
        #expect(snapshot.protocolErrors.isEmpty)
        #expect(snapshot.duplicateRequests == 0)
        #expect(snapshot.requests.count == batches.count)
        #expect(snapshot.requests.allSatisfy { $0.mode == .packedForward })
        #expect(Set(snapshot.requests.compactMap(\.chunkID)) == Set(batches.map(\.0.chunkID)))
        for (batch, events) in batches {
            #expect(snapshot.requests.first { $0.chunkID == batch.chunkID }?.events == events)
        }
        let counters = try #require(output.metrics.counters(for: "127.0.0.1:\(receiver.port)"))
        #expect(counters.batchesAcked == UInt64(batches.count))
        #expect(counters.recordsAcked == UInt64(batches.reduce(0) { $0 + $1.0.count }))
        #expect(counters.batchesRetried == 0)
        #expect(counters.latencyCounts.reduce(0, +) == UInt64(batches.count))
    }

    @Test func keptOpenConnectionIsReusedAndReplacedWhenTheServerClosesIt() async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        let output = try ForwardOutput(
            configuration: testConfiguration([target(receiver)]),
            logger: LogCapture().logger
        )
        for seed in 0..<5 { try await output.deliver(makeBatch(seed: seed).0) }
        #expect(receiver.snapshot.connectionsAccepted == 1)

        // A receiver that closes every connection after two requests: nothing lost, nothing doubled.
        let closing = try await startReceiver { $0.closeAfterRequests = 2 }
        defer { Task { await closing.stop() } }
        let second = try ForwardOutput(configuration: testConfiguration([target(closing)]), logger: LogCapture().logger)
        for seed in 0..<6 { try await second.deliver(makeBatch(seed: seed).0) }
        let snapshot = closing.snapshot
        #expect(snapshot.requests.count == 6)
        #expect(snapshot.duplicateRequests == 0)
        #expect(snapshot.connectionsAccepted >= 3)
    }

    @Test func heloRefusingKeepaliveGetsOneConnectionPerBatch() async throws {
        let receiver = try await startReceiver {
            $0.sharedKey = "k"
            $0.keepalive = false
        }
        defer { Task { await receiver.stop() } }
        let output = try ForwardOutput(
            configuration: testConfiguration([target(receiver)]) { $0.sharedKey = "k" },
            logger: LogCapture().logger
        )
        for seed in 0..<4 { try await output.deliver(makeBatch(seed: seed).0) }
        #expect(receiver.snapshot.connectionsAccepted == 4)
        #expect(receiver.snapshot.requests.count == 4)
        // Not one attempt on a connection the server was about to close.
        #expect(output.metrics.counters(for: "127.0.0.1:\(receiver.port)")?.batchesRetried == 0)
    }

    @Test func delayedAckIsResentOnANewConnection() async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        receiver.inject(.delayAck(.milliseconds(1500)))
        let logs = LogCapture()
        let output = try ForwardOutput(
            configuration: testConfiguration([target(receiver)], ackTimeout: .milliseconds(300)),
            logger: logs.logger
        )
        let (batch, events) = makeBatch()
        try await output.deliver(batch)
        let snapshot = receiver.snapshot
        // Received twice under the same chunk id; the duplicate is counted, nothing is lost.
        #expect(snapshot.chunkCounts[batch.chunkID] == 2)
        #expect(snapshot.duplicateRequests == 1)
        #expect(snapshot.uniqueEvents == events)
        #expect(snapshot.connectionsAccepted == 2)
        let counters = try #require(output.metrics.counters(for: "127.0.0.1:\(receiver.port)"))
        #expect(counters.batchesSent == 2)
        #expect(counters.batchesRetried == 1)
        #expect(counters.batchesAcked == 1)
        #expect(logs.contains("no ack from 127.0.0.1:\(receiver.port) within"))
    }

    @Test func wrongAckIsNotDelivery() async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        receiver.inject(.wrongAck, times: 3)
        let logs = LogCapture()
        let output = try ForwardOutput(configuration: testConfiguration([target(receiver)]), logger: logs.logger)
        let (batch, events) = makeBatch()
        try await output.deliver(batch)
        let snapshot = receiver.snapshot
        // Three wrong acks, then the right one: deliver returned only after the fourth request.
        #expect(snapshot.chunkCounts[batch.chunkID] == 4)
        #expect(snapshot.acksSent == 4)
        // Each wrong ack cost the connection: every resend came on a new one.
        #expect(snapshot.connectionsAccepted == 4)
        #expect(snapshot.uniqueEvents == events)
        let counters = try #require(output.metrics.counters(for: "127.0.0.1:\(receiver.port)"))
        #expect(counters.batchesAcked == 1)
        #expect(counters.batchesRetried == 3)
        #expect(logs.contains("does not match"))
    }

    @Test func receiverClosingMidBatchIsRetried() async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        receiver.inject(.closeMidRequest, times: 2)
        let output = try ForwardOutput(
            configuration: testConfiguration([target(receiver)]),
            logger: LogCapture().logger
        )
        let (batch, events) = makeBatch(count: 50)
        try await output.deliver(batch)
        let snapshot = receiver.snapshot
        #expect(snapshot.requestsCutOff == 2)
        #expect(snapshot.requests.count == 1)
        #expect(snapshot.uniqueEvents == events)
        #expect(output.metrics.counters(for: "127.0.0.1:\(receiver.port)")?.batchesRetried == 2)
    }

    @Test func deliveryWaitsForAReceiverThatIsDownWithoutBusyLooping() async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        await receiver.stopListening()
        let logs = LogCapture()
        let output = try ForwardOutput(configuration: testConfiguration([target(receiver)]), logger: logs.logger)
        let (batch, events) = makeBatch()
        let delivery = Task { try await output.deliver(batch) }
        try await Task.sleep(for: .milliseconds(1500))
        let label = "127.0.0.1:\(receiver.port)"
        let attempts = try #require(output.metrics.counters(for: label)).connectionErrors
        // Backoff 50 ms doubling to 400 ms: about 6 attempts in 1.5 s; a busy loop would make thousands.
        #expect(attempts >= 2 && attempts <= 12, "\(attempts) connection attempts in 1.5 s")
        #expect(output.targetStatus.first?.up == false)
        #expect(logs.contains("target \(label) down: connect to \(label) failed"))

        try await receiver.resumeListening()
        try await delivery.value
        #expect(receiver.snapshot.uniqueEvents == events)
        #expect(output.targetStatus.first?.up == true)
        #expect(output.metrics.counters(for: label)?.up == true)
    }

    @Test func cancellationEndsDeliveryWithoutSuccess() async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        receiver.inject(.dropAck, times: nil)
        let output = try ForwardOutput(
            configuration: testConfiguration([target(receiver)]),
            logger: LogCapture().logger
        )
        let delivery = Task { try await output.deliver(makeBatch().0) }
        #expect(await receiver.wait { $0.requests.count == 1 })
        delivery.cancel()
        await #expect(throws: CancellationError.self) { try await delivery.value }
        #expect(output.metrics.counters(for: "127.0.0.1:\(receiver.port)")?.batchesAcked == 0)
    }

    @Test func failsOverToStandbyAndBackAfterRecovery() async throws {
        let primary = try await startReceiver()
        let standby = try await startReceiver()
        defer {
            Task {
                await primary.stop()
                await standby.stop()
            }
        }
        let logs = LogCapture()
        let output = try ForwardOutput(
            configuration: testConfiguration([target(primary), target(standby, standby: true)]),
            logger: logs.logger
        )
        let heartbeats = Task { try await output.run() }
        defer { heartbeats.cancel() }

        for seed in 0..<3 { try await output.deliver(makeBatch(seed: seed).0) }
        #expect(primary.snapshot.requests.count == 3)
        #expect(standby.snapshot.requests.isEmpty)

        await primary.stopListening()
        for seed in 3..<6 { try await output.deliver(makeBatch(seed: seed).0) }
        #expect(primary.snapshot.requests.count == 3)
        #expect(standby.snapshot.requests.count == 3)
        #expect(output.targetStatus.map(\.up) == [false, true])

        try await primary.resumeListening()
        // Heartbeats every 50 ms bring the primary back after recoverWait (200 ms).
        #expect(await eventually { output.targetStatus.first?.up == true })
        #expect(logs.contains("target 127.0.0.1:\(primary.port) up: heartbeats succeeded"))
        for seed in 6..<9 { try await output.deliver(makeBatch(seed: seed).0) }
        #expect(primary.snapshot.requests.count == 6)
        #expect(standby.snapshot.requests.count == 3)
        #expect(primary.snapshot.duplicateRequests + standby.snapshot.duplicateRequests == 0)
    }

    @Test func heartbeatsMarkAnIdleTargetDownAfterHardTimeout() async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        let logs = LogCapture()
        let output = try ForwardOutput(
            configuration: testConfiguration([target(receiver)]) { $0.hardTimeout = .milliseconds(300) },
            logger: logs.logger
        )
        let heartbeats = Task { try await output.run() }
        defer { heartbeats.cancel() }
        #expect(await receiver.wait { $0.connectionsAccepted >= 2 })
        await receiver.stopListening()
        #expect(await eventually { output.targetStatus.first?.up == false })
        #expect(logs.contains("no successful heartbeat for"))
        try await receiver.resumeListening()
        #expect(await eventually { output.targetStatus.first?.up == true })
    }

    @Test func weightsDistributeBatches() async throws {
        let heavy = try await startReceiver()
        let light = try await startReceiver()
        let excluded = try await startReceiver()
        defer {
            Task {
                await heavy.stop()
                await light.stop()
                await excluded.stop()
            }
        }
        let output = try ForwardOutput(
            configuration: testConfiguration([
                target(heavy, weight: 60), target(light, weight: 20), target(excluded, weight: 0),
            ]),
            logger: LogCapture().logger
        )
        for seed in 0..<80 { try await output.deliver(makeBatch(count: 1, seed: seed).0) }
        let heavyCount = heavy.snapshot.requests.count
        let lightCount = light.snapshot.requests.count
        #expect(heavyCount + lightCount == 80)
        #expect((50...70).contains(heavyCount), "weight 60: \(heavyCount) of 80")
        #expect((10...30).contains(lightCount), "weight 20: \(lightCount) of 80")
        #expect(excluded.snapshot.requests.isEmpty)
    }

    @Test func sharedKeyAndUserAuthentication() async throws {
        let receiver = try await startReceiver {
            $0.sharedKey = "s3cret"
            $0.users = ["alice": "wonderland"]
        }
        defer { Task { await receiver.stop() } }
        var settings = target(receiver)
        settings.username = "alice"
        settings.password = "wonderland"
        let output = try ForwardOutput(
            configuration: testConfiguration([settings]) { $0.sharedKey = "s3cret" },
            logger: LogCapture().logger
        )
        let (batch, events) = makeBatch()
        try await output.deliver(batch)
        let snapshot = receiver.snapshot
        #expect(snapshot.handshakeFailures.isEmpty)
        #expect(snapshot.uniqueEvents == events)
    }

    @Test func wrongPasswordIsAClearError() async throws {
        let receiver = try await startReceiver {
            $0.sharedKey = "k"
            $0.users = ["alice": "wonderland"]
        }
        defer { Task { await receiver.stop() } }
        let logs = LogCapture()
        var settings = target(receiver)
        settings.username = "alice"
        settings.password = "looking-glass"
        let output = try ForwardOutput(
            configuration: testConfiguration([settings]) { $0.sharedKey = "k" },
            logger: logs.logger
        )
        let delivery = Task { try await output.deliver(makeBatch().0) }
        #expect(await eventually { logs.contains("failed: username/password mismatch") })
        delivery.cancel()
        await #expect(throws: CancellationError.self) { try await delivery.value }
        #expect(receiver.snapshot.requests.isEmpty)
        #expect(receiver.snapshot.handshakeFailures.first == "username/password mismatch")
    }

    @Test func wrongSharedKeyIsAClearErrorAndNothingIsDelivered() async throws {
        let receiver = try await startReceiver { $0.sharedKey = "right" }
        defer { Task { await receiver.stop() } }
        let logs = LogCapture()
        var settings = target(receiver)
        settings.sharedKey = "wrong"
        let output = try ForwardOutput(configuration: testConfiguration([settings]), logger: logs.logger)
        let heartbeats = Task { try await output.run() }
        defer { heartbeats.cancel() }
        let delivery = Task { try await output.deliver(makeBatch().0) }
        let label = "127.0.0.1:\(receiver.port)"
        #expect(
            await eventually {
                logs.contains("target \(label) down: handshake with \(label) failed: shared_key mismatch")
            }
        )
        try await Task.sleep(for: .milliseconds(500))
        #expect(receiver.snapshot.requests.isEmpty)
        #expect(receiver.snapshot.handshakeFailures.allSatisfy { $0 == "shared_key mismatch" })
        let counters = try #require(output.metrics.counters(for: label))
        #expect(counters.handshakeErrors >= 2)
        #expect(counters.batchesAcked == 0)
        #expect(counters.up == false)
        delivery.cancel()
        await #expect(throws: CancellationError.self) { try await delivery.value }
    }

    @Test func serverWithThisHostsNameIsRefused() async throws {
        let receiver = try await startReceiver {
            $0.sharedKey = "k"
            $0.hostname = "vigil-test-client"
        }
        defer { Task { await receiver.stop() } }
        let logs = LogCapture()
        let output = try ForwardOutput(
            configuration: testConfiguration([target(receiver)]) { $0.sharedKey = "k" },
            logger: logs.logger
        )
        let delivery = Task { try await output.deliver(makeBatch().0) }
        #expect(await eventually { logs.contains("same hostname between input and output") })
        delivery.cancel()
        await #expect(throws: CancellationError.self) { try await delivery.value }
        #expect(receiver.snapshot.requests.isEmpty)
    }

    @Test func serverAskingForAuthenticationWithoutAConfiguredKeyIsAClearError() async throws {
        let receiver = try await startReceiver { $0.sharedKey = "k" }
        defer { Task { await receiver.stop() } }
        let logs = LogCapture()
        let output = try ForwardOutput(configuration: testConfiguration([target(receiver)]), logger: logs.logger)
        let delivery = Task { try await output.deliver(makeBatch().0) }
        #expect(
            await eventually { logs.contains("requires authentication (sent HELO) but no shared_key is configured") }
        )
        delivery.cancel()
        await #expect(throws: CancellationError.self) { try await delivery.value }
        #expect(receiver.snapshot.requests.isEmpty)
    }

    @Test func tlsWithATrustedCertificate() async throws {
        let certificates = try TestCertificates.shared.get()
        let receiver = try await startReceiver {
            $0.tlsCertificateFile = certificates.serverCertificate
            $0.tlsKeyFile = certificates.serverKey
            $0.sharedKey = "over-tls"
        }
        defer { Task { await receiver.stop() } }
        for serverName in ["localhost", nil] {
            var settings = target(receiver)
            // With a name the certificate's DNS entry is checked; without, its IP address entry.
            settings.tls = ForwardConfiguration.TLS(caFile: certificates.caFile, serverName: serverName)
            settings.sharedKey = "over-tls"
            let output = try ForwardOutput(configuration: testConfiguration([settings]), logger: LogCapture().logger)
            let (batch, events) = makeBatch(seed: serverName == nil ? 1 : 2)
            try await output.deliver(batch)
            #expect(receiver.snapshot.requests.last?.events == events)
        }
    }

    @Test func untrustedCertificateFailsClearlyAndNothingIsDelivered() async throws {
        let certificates = try TestCertificates.shared.get()
        let receiver = try await startReceiver {
            $0.tlsCertificateFile = certificates.untrustedCertificate
            $0.tlsKeyFile = certificates.untrustedKey
        }
        defer { Task { await receiver.stop() } }
        let logs = LogCapture()
        var settings = target(receiver)
        settings.tls = ForwardConfiguration.TLS(caFile: certificates.caFile, serverName: "localhost")
        let output = try ForwardOutput(configuration: testConfiguration([settings]), logger: logs.logger)
        let delivery = Task { try await output.deliver(makeBatch().0) }
        let label = "127.0.0.1:\(receiver.port)"
        #expect(
            await eventually { logs.contains("target \(label) down: TLS handshake with \(label) failed") },
            "\(logs.messages)"
        )
        #expect(logs.messages.contains { $0.contains("CERTIFICATE_VERIFY_FAILED") })
        delivery.cancel()
        await #expect(throws: CancellationError.self) { try await delivery.value }
        #expect(receiver.snapshot.requests.isEmpty)
        let counters = try #require(output.metrics.counters(for: label))
        #expect(counters.connectionErrors >= 1)
        #expect(counters.batchesAcked == 0)
    }

    @Test func gzipFramesDecompressToTheSameEvents() async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        let output = try ForwardOutput(
            configuration: testConfiguration([target(receiver)]) { $0.compression = .gzip },
            logger: LogCapture().logger
        )
        let (batch, events) = makeBatch(count: 200)
        try await output.deliver(batch)
        let request = try #require(receiver.snapshot.requests.first)
        #expect(request.mode == .compressedPackedForward)
        #expect(request.option?["compressed"] == "gzip")
        #expect(request.events == events)
        #expect(request.byteCount < batch.entries.count)
    }

    @Test func oversizedBatchFailsLoudly() async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        let logs = LogCapture()
        let output = try ForwardOutput(
            configuration: testConfiguration([target(receiver)]) { $0.maxBatchBytes = 100 },
            logger: logs.logger
        )
        let error = await #expect(throws: ForwardError.self) { try await output.deliver(makeBatch(count: 20).0) }
        #expect(error?.code == .batchTooLarge)
        #expect(logs.contains("error: batch"))
        #expect(receiver.snapshot.connectionsAccepted == 0)
    }

    @Test func refusesUnusableConfigurations() throws {
        func error(_ configuration: ForwardConfiguration) -> String? {
            do {
                _ = try ForwardOutput(configuration: configuration, logger: LogCapture().logger)
                return nil
            } catch {
                return error.message
            }
        }
        #expect(error(testConfiguration([])) == "forward: no targets configured")
        #expect(
            error(testConfiguration([.init(host: "a", weight: 0), .init(host: "b", standby: true)]))
                == "forward: no regular target with a weight above 0"
        )
        var missingCA = ForwardConfiguration.Target(host: "a")
        missingCA.tls = .init(caFile: "/nonexistent/ca.pem")
        #expect(error(testConfiguration([missingCA]))?.hasPrefix("forward target a:24224: TLS setup failed") == true)
    }

    @Test func metricsExposition() async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        var settings = target(receiver)
        settings.name = "aggregator"
        let output = try ForwardOutput(configuration: testConfiguration([settings]), logger: LogCapture().logger)
        try await output.deliver(makeBatch(count: 4).0)
        var writer = MetricWriter(format: .text)
        output.metrics.write(into: &writer)
        let families = try parseExposition(writer.bytes[...])
        func value(_ name: String, suffix: String = "", le: String? = nil) -> Double? {
            let samples = families.first { $0.name == name }?.samples ?? []
            let sample = samples.first { sample in
                sample.name == name + suffix && sample[label: "target"] == "aggregator"
                    && (le == nil || sample[label: "le"] == le)
            }
            return sample?.value
        }
        #expect(value("vigil_forward_records_sent_total") == 4)
        #expect(value("vigil_forward_records_acked_total") == 4)
        #expect(value("vigil_forward_batches_sent_total") == 1)
        #expect(value("vigil_forward_batches_acked_total") == 1)
        #expect(value("vigil_forward_batches_retried_total") == 0)
        #expect(value("vigil_forward_connection_errors_total") == 0)
        #expect(value("vigil_forward_handshake_errors_total") == 0)
        #expect(value("vigil_forward_target_up") == 1)
        #expect(value("vigil_forward_ack_latency_seconds", suffix: "_count") == 1)
        #expect(value("vigil_forward_ack_latency_seconds", suffix: "_bucket", le: "+Inf") == 1)
        #expect(value("vigil_forward_ack_latency_seconds", suffix: "_bucket", le: "60") == 1)
        #expect(families.first { $0.name == "vigil_forward_ack_latency_seconds" }?.type == "histogram")
        #expect(families.allSatisfy { $0.help?.isEmpty == false })
    }
}
