import Contracts
import Fleet
import Foundation
import OrderFleetTesting
import Testing
import Workers

/// The business rules file as a worker reads it at start-up (pure, no broker): the
/// shipped config/rules.yaml loads, and every kind of mistake names the file and key.
@Suite("rules file")
struct RulesFileTests {
    func load(_ text: String) throws(ConfigurationError) -> BusinessRules {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("rules-\(UUID().uuidString).yaml").path
        try? text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try RulesFile.load(path: file)
    }

    @Test("the shipped config/rules.yaml loads and is valid")
    func shippedFile() throws {
        let rules = try RulesFile.load(path: NoidaServer.repositoryRoot.appendingPathComponent(RulesFile.defaultPath).path)
        #expect(rules.locations.count >= 3)
        #expect(Set(rules.locations.map(\.type)) == Set(LocationType.allCases))
        #expect(rules.payment.velocity != nil)
    }

    @Test("an empty file takes every default (the invoicing tables next to the file)")
    func defaults() throws {
        var defaults = BusinessRules()
        defaults.invoicing.resolvePaths(relativeTo: FileManager.default.temporaryDirectory.path)
        #expect(defaults.invoicing.taxTable == FileManager.default.temporaryDirectory.appendingPathComponent("tax-rates.csv").standardizedFileURL.path)
        #expect(try load("{}") == defaults)
        #expect(try load("") == defaults)
        #expect(try load("# only a comment\n") == defaults)
    }

    @Test("invoicing: entities are checked, the tax table is read relative to the rules file, a problem names its key")
    func invoicing() throws {
        let shipped = try RulesFile.load(path: NoidaServer.repositoryRoot.appendingPathComponent(RulesFile.defaultPath).path)
        #expect(shipped.invoicing.entities.map(\.id) == ["eu", "us"])
        #expect(shipped.invoicing.taxTable.hasSuffix("/config/tax-rates.csv"))
        let austria = try CountryCode("AT")
        let states = try CountryCode("US")
        #expect(shipped.invoicing.entity(for: austria)?.id == "eu" && shipped.invoicing.entity(for: states)?.id == "us")
        let entity = "{id: us, name: Brand Inc., address: {name: B, lines: [x], city: c, country: US}, invoicePrefix: US, creditNotePrefix: USC}"
        for (text, says) in [
            ("invoicing: {entities: [\(entity)], taxTable: /nonexistent.csv}", "invoicing.taxTable"),
            ("invoicing: {entities: [\(entity.replacingOccurrences(of: "USC", with: "US"))]}", "invoicing.entities[0].invoicePrefix"),
            ("invoicing: {entities: [\(entity.replacingOccurrences(of: "country: US}", with: "country: US}, bookCurrency: EUR"))]}", "invoicing.fxRates"),
            ("invoicing: {entities: [{id: us}]}", "invoicing.entities[0]"),
        ] {
            let error = #expect(throws: ConfigurationError.self, "\(text)") { _ = try load(text) }
            #expect(error?.description.contains(says) == true, "\(error?.description ?? "loaded"): wanted \(says)")
        }
    }

    @Test("a mistake names the key path", arguments: [
        ("sourcing: {maxShipments: lots}", "sourcing.maxShipments: expected Int"),
        ("locations: [{id: A, type: depot, country: US}]", "locations[0].type"),
        ("locations: [{id: A, country: US}]", "locations[0].type: required key is missing"),
        ("locations: [{id: A, type: store, country: USA}]", "locations[0].country"),
        ("sourcing: {maxShipments: 0}", "sourcing.maxShipments: must be at least 1"),
        ("zones: [{country: US, distances: {NOPE: 1}}]", "zones[0].distances.NOPE: no such location"),
        ("payment: {velocity: {maxOrders: 0, windowSeconds: 60}}", "payment.velocity.maxOrders: must be at least 1"),
        ("sourcing: {maxShipment: 3}", "unknown key(s) sourcing.maxShipment"),
        ("locations: [{id: A, type: store, country: US, lat: 1}]", "unknown key(s) locations[0].lat"),
        ("invoicing: {entities: [{id: us, name: B, address: {name: B, lines: [x], city: c, country: US}, invoicePrefix: U, creditNotePrefix: UC, invoiceAt: monthly}]}",
         "invoicing.entities[0].invoiceAt"),
        ("returns: {appeasements: {perOrder: {usd: -1}}}", "returns.appeasements.perOrder.usd: a currency code and a limit ≥ 0"),
        ("returns: {appeasements: {perRole: {agent: {EUR: -5}}}}", "returns.appeasements.perRole.agent.EUR"),
    ])
    func mistakes(text: String, expected: String) {
        #expect {
            _ = try load(text)
        } throws: { error in
            let message = "\(error)"
            return message.hasPrefix("configuration key rules.file (RULES_FILE): ") && message.contains(expected)
        }
    }

    @Test("a missing file says so")
    func missingFile() {
        #expect(throws: ConfigurationError.self) { try RulesFile.load(path: "/nonexistent/rules.yaml") }
    }
}
