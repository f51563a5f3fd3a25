// What the stage runtime does per record besides Kafka, one piece each: decode the
// input envelope, derive the output's id and trace, encode the output and the
// idempotency record, look up and remember the input's key. Instruction counts and
// allocations are stable on a noisy machine, so they carry the thresholds
// (Thresholds/), checked by `swift package benchmark thresholds check`.
import Benchmark
import Contracts
import Foundation
import Workers

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.instructions, .mallocCountTotal, .wallClock],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000,
        // Checked against Thresholds/ (p90): any extra allocation, 5% more instructions
        // (where perf counters are readable) or twice the time is a regression; time
        // only that loosely, as this machine's runs vary by up to 2x.
        thresholds: [
            .mallocCountTotal: .init(relative: [.p90: 0.5]),
            .instructions: .init(relative: [.p90: 5.0]),
            .wallClock: .init(relative: [.p90: 100.0]),
        ]
    )

    let time = Date(timeIntervalSince1970: 1_780_000_000)
    let input = Envelope(
        id: "0b7c2f4e-8d3a-5f1b-9c2d-4e6f8a0b1c2d", source: "bench", time: time,
        traceparent: TraceParent.root(forEventID: "0b7c2f4e-8d3a-5f1b-9c2d-4e6f8a0b1c2d"),
        event: ReportBucket(report: "bench", bucket: "key-42", values: ["n": 42, "amount_minor": 129_900], updatedAt: time).event
    )
    let inputRecord = try! input.record()

    // Headers and the JSON payload.
    Benchmark("DecodeInputEnvelope") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! Envelope.decode(inputRecord))
        }
    }

    // Event id and trace child: a SHA-1 each.
    Benchmark("DeriveOutputEnvelope") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(Envelope.output(of: input, stage: "passthrough", outputIndex: 0, event: input.event, time: time))
        }
    }

    Benchmark("EncodeOutputEnvelope") { benchmark in
        let output = Envelope.output(of: input, stage: "passthrough", outputIndex: 0, event: input.event, time: time)
        for _ in benchmark.scaledIterations {
            blackHole(try! output.record())
        }
    }

    Benchmark("EncodeIdempotencyRecord") { benchmark in
        let record = IdempotencyRecord(
            stage: "passthrough", key: input.id, eventId: input.id, processedAt: time, expiresAt: time.addingTimeInterval(604_800))
        let envelope = Envelope.output(of: input, stage: "passthrough.idempotency", outputIndex: 0, event: record.event, time: time)
        for _ in benchmark.scaledIterations {
            blackHole(try! envelope.record())
        }
    }

    Benchmark("DeriveEventID") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(DeterministicID.eventID(inputEventID: input.id, stage: "passthrough", outputIndex: 0))
        }
    }

    // 1,000 keys a scaled iteration: what a restore indexes and a batch looks up.
    let keyTexts = (0..<1_000).map { index in
        DeterministicID.eventID(inputEventID: "restore", stage: "bench", outputIndex: index)
    }
    Benchmark("Remember1000IdempotencyKeys", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            var keys = IdempotencyKeys()
            for (index, key) in keyTexts.enumerated() { keys.restore(key, expiresAt: Int64(index)) }
            for key in keyTexts { blackHole(keys.contains(key)) }
            blackHole(keys)
        }
    }
}
