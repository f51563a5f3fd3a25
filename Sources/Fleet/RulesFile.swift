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
        let rules: BusinessRules
        do {
            rules = try YAMLDecoder().decode(BusinessRules.self, from: text)
        } catch let error as DecodingError {
            throw ConfigurationError(key: key, reason: "\(path): \(describe(error))")
        } catch {
            throw ConfigurationError(key: key, reason: "\(path): \(error)")
        }
        let problems = rules.validate()
        guard problems.isEmpty else {
            throw ConfigurationError(key: key, reason: "\(path): \(problems.joined(separator: "; "))")
        }
        return rules
    }

    /// `locations[2].type: 'depot' is not a valid value` rather than Swift's dump.
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
