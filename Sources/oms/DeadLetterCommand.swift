import ArgumentParser
import Contracts
import Fleet
import Foundation
import Kafka

/// `oms dlq list|show|replay`: inspect and re-drive dead letters.
struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Inspect and replay the records stages could not process (oms.deadletter).",
        subcommands: [List.self, Show.self, Replay.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per dead letter: id (partition:offset), time, stage, origin, attempts, error.")

        @OptionGroup var client: ClientOptions
        @Option(help: "Only letters of this stage.")
        var stage: String?

        func run() async throws {
            let letters = try await DeadLetterCommand.read(client, stage: stage)
            for letter in letters {
                let origin = "\(letter.headerText(DeadLetterHeader.topic))[\(letter.headerText(DeadLetterHeader.partition))]@\(letter.headerText(DeadLetterHeader.offset))"
                print([
                    "\(letter.partition):\(letter.offset)", letter.headerText(DeadLetterHeader.time), letter.headerText(DeadLetterHeader.stage), origin,
                    "attempts=\(letter.headerText(DeadLetterHeader.attempts))", letter.headerText(DeadLetterHeader.error),
                ].joined(separator: "\t"))
            }
            FileHandle.standardError.write(Data("# \(letters.count) dead letter(s)\n".utf8))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One dead letter in full: headers and the original key and value.")

        @OptionGroup var client: ClientOptions
        @Argument(help: "The letter's id, partition:offset, as `list` prints it.")
        var id: String

        func run() async throws {
            let (partition, offset) = try DeadLetterCommand.parse(id)
            guard let letter = try await DeadLetterCommand.read(client, stage: nil).first(where: { $0.partition == partition && $0.offset == offset }) else {
                throw ValidationError("no dead letter \(id)")
            }
            for header in letter.headers where header.name.hasPrefix("oms_dlq_") {
                print("\(header.name.dropFirst("oms_dlq_".count)): \(header.stringValue ?? "")")
            }
            let original = try DeadLetters.original(of: letter)
            print("original headers:")
            for header in original.headers { print("  \(header.name): \(header.stringValue ?? "<\(header.value?.count ?? 0) bytes>")") }
            print("original key: \(DeadLetterCommand.text(original.key))")
            print("original value: \(DeadLetterCommand.text(original.value))")
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write dead letters' original records back to their topics, so that the stage processes them again.",
            discussion: "Replaying a letter twice is harmless: the stage skips an event whose id it has processed."
        )

        @OptionGroup var client: ClientOptions
        @Argument(help: "Ids (partition:offset) of the letters to replay.")
        var ids: [String] = []
        @Flag(help: "Replay every letter (of --stage, if given).")
        var all = false
        @Option(help: "Only letters of this stage.")
        var stage: String?

        func validate() throws {
            if ids.isEmpty == !all { throw ValidationError("name letters by id, or pass --all") }
        }

        func run() async throws {
            let wanted = Set(try ids.map { try DeadLetterCommand.parse($0) }.map { "\($0.0):\($0.1)" })
            let letters = try await DeadLetterCommand.read(client, stage: stage).filter { all || wanted.contains("\($0.partition):\($0.offset)") }
            if !all, letters.count != wanted.count {
                throw ValidationError("not found: \(wanted.subtracting(letters.map { "\($0.partition):\($0.offset)" }).sorted().joined(separator: ", "))")
            }
            let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: try client.kafkaConfiguration(clientID: "oms-dlq")))
            for letter in letters {
                let original = try DeadLetters.original(of: letter)
                let report = try await producer.send(original)
                print("\(letter.partition):\(letter.offset) -> \(report.topic)[\(report.partition)]@\(report.offset)")
            }
            try await producer.close()
            FileHandle.standardError.write(Data("# replayed \(letters.count) dead letter(s)\n".utf8))
        }
    }

    static func read(_ client: ClientOptions, stage: String?) async throws -> [KafkaMessage] {
        let letters = try await DeadLetterQueue.readAll(kafka: try client.kafkaConfiguration(clientID: "oms-dlq"))
        return letters.filter { stage == nil || $0.header(DeadLetterHeader.stage)?.stringValue == stage }
    }

    static func parse(_ id: String) throws -> (Int32, Int64) {
        let parts = id.split(separator: ":")
        guard parts.count == 2, let partition = Int32(parts[0]), let offset = Int64(parts[1]) else {
            throw ValidationError("'\(id)' is not partition:offset")
        }
        return (partition, offset)
    }

    static func text(_ bytes: [UInt8]?) -> String {
        guard let bytes else { return "<null>" }
        return String(validating: bytes, as: UTF8.self) ?? "base64:\(Data(bytes).base64EncodedString())"
    }
}

extension KafkaMessage {
    fileprivate func headerText(_ name: String) -> String { header(name)?.stringValue ?? "" }
}
