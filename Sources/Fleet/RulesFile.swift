import Foundation
import Workers
import Yams

/// Reads the business rules (`rules.file`, YAML or JSON) and stops start-up on any
/// problem, naming the file and the key inside it.
public enum RulesFile {
    /// The configuration key naming the file.
    public static let key = "rules.file"
    /// Used when `rules.file` is not set, relative to the working directory.
    public static let defaultPath = "config/rules.yaml"

    /// Loads and validates the rules at `path`.
    public static func load(path: String) throws(ConfigurationError) -> BusinessRules {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(key: key, reason: "cannot read \(path): \(error.localizedDescription)")
        }
        // A file with no document (empty, or only comments) is the empty mapping: every default.
        var document = text
        do {
            if try Yams.load(yaml: text) == nil { document = "{}" }
        } catch {
            // Not YAML: the decoder below reports where.
        }
        let unknown = unknownKeys(in: document)
        guard unknown.isEmpty else {
            throw ConfigurationError(key: key, reason: "\(path): unknown key(s) \(unknown.joined(separator: ", ")) (a typo would silently take the default)")
        }
        var rules: BusinessRules
        do {
            rules = try YAMLDecoder().decode(BusinessRules.self, from: document)
        } catch let error as DecodingError {
            throw ConfigurationError(key: key, reason: "\(path): \(describe(error))")
        } catch {
            throw ConfigurationError(key: key, reason: "\(path): \(error)")
        }
        rules.invoicing.resolvePaths(relativeTo: URL(fileURLWithPath: path).deletingLastPathComponent().path)
        let problems = rules.validate()
        guard problems.isEmpty else {
            throw ConfigurationError(key: key, reason: "\(path): \(problems.joined(separator: "; "))")
        }
        return rules
    }

    /// The keys each mapping of the file may have, by path pattern (`[]` for any index).
    static let knownKeys: [String: Set<String>] = [
        "": ["intake", "payment", "sourcing", "locations", "zones", "shipping", "returns", "notifications", "sla", "stockFeeds", "invoicing", "fulfilment"],
        "invoicing": ["entities", "taxTable", "fxRates", "taxClasses"],
        "invoicing.entities[]": ["id", "name", "taxId", "address", "email", "markets", "bookCurrency", "invoicePrefix", "creditNotePrefix", "invoiceAt"],
        "invoicing.entities[].address": ["name", "lines", "city", "region", "postalCode", "country", "phone", "email"],
        "intake": ["currencies"],
        "payment": ["holdAboveMinorUnits", "velocity", "holdOnCountryMismatch", "riskyPostcodes"],
        "payment.velocity": ["maxOrders", "windowSeconds"],
        "payment.riskyPostcodes[]": ["country", "prefix"],
        "sourcing": ["maxShipments", "maxReplans", "backorderPolicy", "backorderOrder", "preorderPartial"],
        "locations[]": ["id", "type", "country", "latitude", "longitude", "fulfilment"],
        "fulfilment": ["acceptWithinSeconds", "shipWithinSeconds", "withdrawAfterSeconds", "checkIntervalSeconds"],
        "zones[]": ["country", "postalPrefix", "distances", "latitude", "longitude"],
        "shipping": ["rates", "zoneBands", "promiseDays", "trackingWindowDays", "lineCancelShipping"],
        "shipping.rates[]": ["carrier", "service", "serviceLevel", "zones", "maxWeightGrams", "price", "transitDays", "hazmat"],
        "shipping.zoneBands[]": ["name", "maxKm"],
        "returns": ["windowDays", "channelWindowDays", "countryWindowDays", "categoryWindowDays", "writeOffReasons", "receivingLocation", "carrier", "rmaValidDays", "appeasements", "exchanges", "checkIntervalSeconds"],
        "returns.exchanges": ["reserveAt", "outOfStock"],
        "returns.appeasements": ["perRole", "perOrder"],
        "notifications": ["reviewInvitationDelaySeconds", "trackingURL", "checkIntervalSeconds"],
        "sla": ["rules", "checkIntervalSeconds"],
        "sla.rules[]": ["name", "status", "maxSeconds", "shipBySecondsBeforePromise", "severity"],
        "stockFeeds": ["channels", "checkIntervalSeconds"],
        "stockFeeds.channels[]": ["channel", "percent", "buffer", "max", "minIntervalSeconds", "locations"],
    ]

    /// Keys the rules do not have, with their paths; unparseable YAML is left to the decoder.
    static func unknownKeys(in text: String) -> [String] {
        guard let document = try? Yams.load(yaml: text) else { return [] }
        var unknown: [String] = []
        func visit(_ node: Any, pattern: String, path: String) {
            if let mapping = node as? [String: Any] {
                guard let known = knownKeys[pattern] else { return }  // free-form maps (distances, thresholds)
                for (name, value) in mapping.sorted(by: { $0.key < $1.key }) {
                    let child = path.isEmpty ? name : "\(path).\(name)"
                    if known.contains(name) {
                        visit(value, pattern: pattern.isEmpty ? name : "\(pattern).\(name)", path: child)
                    } else {
                        unknown.append(child)
                    }
                }
            } else if let list = node as? [Any] {
                for (index, item) in list.enumerated() { visit(item, pattern: "\(pattern)[]", path: "\(path)[\(index)]") }
            }
        }
        visit(document, pattern: "", path: "")
        return unknown
    }

    /// `locations[2].type: …` with the key path, rather than Swift's dump of the error.
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue { text += "[\(index)]" } else { text += text.isEmpty ? key.stringValue : ".\(key.stringValue)" }
            }
            return text.isEmpty ? "(top level)" : text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): required key is missing"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(type), found nothing"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
