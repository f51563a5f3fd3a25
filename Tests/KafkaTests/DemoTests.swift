import Foundation
import OrderFleetTesting
import Testing

/// `oms demo`, the newcomer's first command, as a process: 2,000 orders through every
/// stage and the gateway on the embedded broker, checked by its own summary. It keeps
/// both cores busy for minutes, so `scripts/test` runs it after the broker suites (whose
/// deadlines assume they do not share the machine with it), beside the connector process
/// suites, and it sits in the serialized pipeline suite for runs of everything at once.
extension PipelineTests {
    @Test("oms demo --orders 2000 settles every order and every invariant holds")
    func demo2000() async throws {
        let summaryFile = FileManager.default.temporaryDirectory.appendingPathComponent("oms-demo-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: summaryFile) }
        // A generous --settle: other suites run beside this one and slow it down.
        let arguments = ["demo", "--orders", "2000", "--rate", "80", "--settle", "600", "--port", "0", "--summary-json", summaryFile.path]
        // Both streams, in the order written: logs go to standard error.
        let (status, printed) = try await OMSCommandTests.run(OMSCommandTests.omsBinary, arguments, printed: .both, directory: NoidaServer.repositoryRoot)
        #expect(status == 0, "\(printed.suffix(3_000))")
        // The verdict is the last word: nothing at error level after it (a client that
        // outlived the embedded cluster would log its refused connections there).
        let verdict = try #require(printed.range(of: "All invariants hold."), "\(printed.suffix(3_000))")
        let after = printed[verdict.upperBound...].split(separator: "\n")
        let errors = after.filter { line in line.split(separator: " ").dropFirst().first.map { $0 == "error" || $0 == "critical" } ?? false }
        #expect(errors.isEmpty, "after the verdict: \(errors.prefix(5))")
        // Every client is closed at shutdown: one left open would hold the summary back 15 s.
        #expect(!printed.contains("Kafka clients still open"), "\(printed.suffix(3_000))")

        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: summaryFile)) as? [String: Any])
        #expect(summary["orders"] as? Int == 2000)
        #expect(summary["settled"] as? Bool == true)
        let invariants = try #require(summary["invariants"] as? [[String: Any]])
        #expect(Set(invariants.compactMap { $0["name"] as? String }) == [
            "no oversell", "no duplicate order", "every order in a final or explained state", "malformed input refused or dead-lettered",
            "re-sent webhooks answered from the first delivery", "reports agree with the inputs",
            "every shipped channel order confirmed to its channel once", "no feed ever advertised more than available-to-sell",
            "every notification delivered once", "CRM and ERP feeds agree with the order views",
            "every subscribed event delivered to the brand's webhook once", "every text message sent once",
            "every capture, refund and void executed once at the payment provider",
            "every captured shipment invoiced once, every refund credited, numbers gap-free",
            "order changes decided once, cancelled units never shipped, no reservation left behind",
            "every exchange ends once: one replacement shipped, one refund, or the RMA expired and its replacement cancelled",
            "nothing shipped from a confirming location before it packed; every short-picked unit re-sourced once; a silent location withdrawn and re-sourced",
            "no backorder waits while stock that could fill it is free", "pre-orders released on their launch date, not before",
        ])
        for invariant in invariants {
            #expect(invariant["holds"] as? Bool == true, "\(invariant["name"] ?? ""): \(invariant["detail"] ?? "")")
        }
        // Every order that should have a view is counted once as final or explained.
        let twists = try #require(summary["twists"] as? [String: Int])
        let expected = 2000 - (twists["malformed_http"] ?? 0) - (twists["malformed_kafka"] ?? 0)
        let final = (summary["finalStates"] as? [String: Int] ?? [:]).values.reduce(0, +)
        let explained = (summary["explained"] as? [String: Int] ?? [:]).values.reduce(0, +)
        #expect(final + explained == expected)
        #expect((summary["finalStates"] as? [String: Int])?["delivered"] ?? 0 > 1000, "most orders are delivered")
        // Each stage reported latencies, and the live progress was printed.
        let latency = try #require(summary["latency"] as? [String: Any])
        #expect(Set(latency.keys).isSuperset(of: ["intake", "payment", "fraud-velocity", "inventory", "allocation", "shipping", "tracking", "returns", "view"]))
        #expect(printed.contains("sent 2000/2000"))
        #expect(printed.contains("All invariants hold."))
    }
}
