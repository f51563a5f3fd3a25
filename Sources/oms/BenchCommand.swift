import ArgumentParser
import Foundation
import Kafka
import Logging
import Synchronization
import Workers

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure this Kafka API's producer and consumer throughput against kcat on the same broker.",
        discussion: """
            Starts `oms broker` in its own process (unless --brokers is given), then for each run: kcat -P and the \
            Swift producer each write the same N keyed records to their own topic; kcat -C and the Swift consumer each \
            read their topic back from the beginning. Prints rates (median of the runs) and Swift/kcat ratios.
            """
    )

    @Option(help: "Use this cluster instead of a fresh embedded one.")
    var brokers: String?

    @Option(help: "Messages per run.")
    var messages = 500_000

    @Option(help: "Value size in bytes.")
    var size = 100

    @Option(help: "Partitions per topic (the embedded broker keeps ~5 MiB per partition).")
    var partitions: Int32 = 16

    @Option(help: "Runs; the median is reported.")
    var runs = 3

    func run() async throws {
        guard messages > 0, size > 0, runs > 0, partitions > 0 else { throw ValidationError("--messages, --size, --runs and --partitions must be positive") }
        var logger = Logger(label: "oms.bench")
        logger.logLevel = .warning
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("oms-bench-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }

        let runID = String(UUID().uuidString.prefix(6)).lowercased()
        say("broker: \(brokers ?? "embedded (oms broker, 1 broker, its own process, a fresh one per run)"); \(messages) messages of \(size) bytes, \(partitions) partitions, \(runs) run(s)")

        // Keyed, so that the partitioner spreads records evenly (keyless records go in
        // sticky batches, which can overfill one partition of the embedded broker).
        // kcat -l -K'\t' reads "key<TAB>value" lines; the Swift side sends the same.
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        let keys = (0..<messages).map { Array("key-\($0)".utf8) }
        let dataFile = work.appendingPathComponent("values.txt")
        var data = Data(capacity: messages * (size + 12))
        for key in keys {
            data.append(contentsOf: key)
            data.append(UInt8(ascii: "\t"))
            data.append(contentsOf: value)
            data.append(UInt8(ascii: "\n"))
        }
        try data.write(to: dataFile)

        let common = ["-X", "enable.idempotence=true", "-X", "acks=all", "-X", "linger.ms=5"]
        var results: [String: [Double]] = [:]
        for run in 1...runs {
            let kcatTopic = "bench-\(runID)-kcat-\(run)"
            let swiftTopic = "bench-\(runID)-swift-\(run)"
            // A fresh embedded broker per run: it keeps only ~5 MiB per partition.
            let (bootstrap, broker) = try await prepareBroker(topics: [kcatTopic, swiftTopic], work: work, logger: logger)
            defer {
                broker?.terminate()
                broker?.waitUntilExit()
            }
            results["kcat produce", default: []].append(try Self.timeProcess("kcat", ["-P", "-b", bootstrap, "-t", kcatTopic, "-l", "-K", "\t"] + common + [dataFile.path]))
            results["swift produce", default: []].append(try await Self.timeSwiftProduce(bootstrap: bootstrap, topic: swiftTopic, keys: keys, value: value, logger: logger))
            results["kcat consume", default: []].append(try Self.timeProcess("kcat", ["-C", "-b", bootstrap, "-t", kcatTopic, "-o", "beginning", "-e", "-q", "-c", "\(messages)"]))
            results["swift consume", default: []].append(try await Self.timeSwiftConsume(bootstrap: bootstrap, topic: swiftTopic, partitions: partitions, count: messages, logger: logger))
            say("run \(run): " + ["kcat produce", "swift produce", "kcat consume", "swift consume"].map { "\($0) \(Self.rate(messages, results[$0]!.last!))" }.joined(separator: ", "))
        }
        let median = results.mapValues { $0.sorted()[$0.count / 2] }
        let mib = Double(messages * size) / 1_048_576
        say("")
        say("| client | seconds (median) | messages/s | MiB/s | ratio Swift/kcat |")
        say("|---|---|---|---|---|")
        for (side, kcatKey, swiftKey) in [("producer", "kcat produce", "swift produce"), ("consumer", "kcat consume", "swift consume")] {
            let kcat = median[kcatKey]!
            let swift = median[swiftKey]!
            say(String(format: "| kcat %@ | %.3f | %.0f | %.1f | |", side, kcat, Double(messages) / kcat, mib / kcat))
            say(String(format: "| Swift %@ | %.3f | %.0f | %.1f | **%.2f** |", side, swift, Double(messages) / swift, mib / swift, kcat / swift))
        }
    }

    /// Creates the run's topics on --brokers, or starts an embedded broker holding them.
    func prepareBroker(topics: [String], work: URL, logger: Logger) async throws -> (String, Process?) {
        if let brokers {
            let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: logger)
            for topic in topics {
                _ = try await admin.createTopic(KafkaTopicSpec(name: topic, partitions: partitions, replicationFactor: 1))
            }
            return (brokers, nil)
        }
        let file = work.appendingPathComponent("bootstrap-\(UUID().uuidString)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        process.arguments = ["broker", "--brokers", "1", "--bootstrap-file", file.path] + topics.flatMap { ["--topic", "\($0):\(partitions)"] }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (try await Self.waitForFile(file), process)
    }

    static func rate(_ messages: Int, _ seconds: Double) -> String {
        String(format: "%.0f msg/s", Double(messages) / seconds)
    }

    static func waitForFile(_ file: URL) async throws -> String {
        for _ in 0..<200 {
            if let text = try? String(contentsOf: file, encoding: .utf8), !text.isEmpty { return text }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ValidationError("the embedded broker did not start within 10 s")
    }

    static func timeProcess(_ tool: String, _ arguments: [String]) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        process.standardOutput = FileHandle.nullDevice
        // Not waitUntilExit(): on Linux it spins the run loop, keeping a core busy while
        // the measured tool runs (on a 2-core machine, half of what kcat could use).
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        let start = ContinuousClock.now
        try process.run()
        exited.wait()
        let elapsed = ContinuousClock.now - start
        guard process.terminationStatus == 0 else { throw ValidationError("\(tool) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)") }
        return elapsed.seconds
    }

    static func timeSwiftProduce(bootstrap: String, topic: String, keys: [[UInt8]], value: [UInt8], logger: Logger) async throws -> Double {
        let start = ContinuousClock.now
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: KafkaConfiguration(bootstrapServers: bootstrap)), logger: logger)
        // In chunks through the batch call, as a hot path would; building the records
        // is timed, as kcat's reading of its input file is.
        var chunk: [KafkaProducerMessage] = []
        chunk.reserveCapacity(10_000)
        for start in stride(from: 0, to: keys.count, by: 10_000) {
            chunk.removeAll(keepingCapacity: true)
            for key in keys[start..<min(start + 10_000, keys.count)] {
                chunk.append(KafkaProducerMessage(topic: topic, key: key, value: value))
            }
            try await producer.enqueue(contentsOf: chunk)
        }
        try await producer.close(timeout: .seconds(120))
        return (ContinuousClock.now - start).seconds
    }

    static func timeSwiftConsume(bootstrap: String, topic: String, partitions: Int32, count: Int, logger: Logger) async throws -> Double {
        let start = ContinuousClock.now
        var configuration = KafkaConsumerConfiguration(kafka: KafkaConfiguration(bootstrapServers: bootstrap), groupID: "oms-bench")
        configuration.maxBatchSize = 10_000
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        // Like kcat -C: read the partitions directly, no group membership.
        try await consumer.assign((0..<partitions).map { KafkaTopicPartitionOffset(topic: topic, partition: $0, offset: KafkaTopicPartitionOffset.beginning) })
        let progress = BenchProgress()
        // Returns when it read the last record, so the watchdog's polling below does not
        // add to the measured time.
        let reader = Task { () -> ContinuousClock.Instant in
            for try await event in consumer.events() {
                if case .messages(let messages) = event,
                   progress.received.add(messages.count, ordering: .relaxed).newValue >= count {
                    return .now
                }
            }
            return .now
        }
        // The embedded cluster silently drops old data past ~5 MiB per partition, so a
        // run can fall short: stop after 10 s without a record instead of waiting forever.
        var seen = 0
        var idleSince = ContinuousClock.now
        while true {
            try await Task.sleep(for: .milliseconds(20))
            let now = progress.received.load(ordering: .relaxed)
            if now >= count { break }
            if now != seen {
                seen = now
                idleSince = .now
            } else if ContinuousClock.now - idleSince > .seconds(10) {
                reader.cancel()
                break
            }
        }
        let end = try await reader.value
        let received = progress.received.load(ordering: .relaxed)
        let elapsed = (end - start).seconds
        try await consumer.close()
        guard received == count else { throw ValidationError("Swift consumer read \(received) of \(count)") }
        return elapsed
    }
}

/// Records read so far, shared with the task that reads them.
final class BenchProgress: Sendable {
    let received = Atomic<Int>(0)
}

/// Prints a line at once, also when standard output is a file or a pipe.
func say(_ line: String = "") {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
