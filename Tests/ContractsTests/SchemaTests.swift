import Foundation
import Testing

@testable import Contracts

/// A validator for the JSON Schema subset the schemas in topics/schemas use.
/// Unsupported keywords are errors, so a schema cannot silently rely on something unchecked.
struct SchemaValidator {
    let root: JSONValue
    static let annotations: Set<String> = ["$schema", "$id", "title", "description", "format", "contentEncoding", "$defs", "$comment"]

    func validate(_ instance: JSONValue) -> [String] {
        var errors: [String] = []
        validate(instance, against: root, path: "$", errors: &errors)
        return errors
    }

    private func resolve(_ ref: String) -> JSONValue? {
        guard ref.hasPrefix("#/$defs/"), case .object(let top) = root, case .object(let defs)? = top["$defs"] else { return nil }
        return defs[String(ref.dropFirst("#/$defs/".count))]
    }

    private func matchesType(_ value: JSONValue, _ type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null): return true
        case ("number", .number): return true
        case ("integer", .number(let text)): return !text.contains(".") && !text.lowercased().contains("e")
        default: return false
        }
    }

    private func validate(_ value: JSONValue, against schema: JSONValue, path: String, errors: inout [String]) {
        guard case .object(let s) = schema else {
            errors.append("\(path): schema is not an object")
            return
        }
        for (keyword, argument) in s.sorted(by: { $0.key < $1.key }) {
            switch keyword {
            case _ where Self.annotations.contains(keyword):
                continue
            case "$ref":
                guard case .string(let ref) = argument, let target = resolve(ref) else {
                    errors.append("\(path): unresolvable $ref \(argument)")
                    continue
                }
                validate(value, against: target, path: path, errors: &errors)
            case "type":
                let types: [String]
                switch argument {
                case .string(let t): types = [t]
                case .array(let list): types = list.compactMap { if case .string(let t) = $0 { t } else { nil } }
                default: types = []
                }
                if !types.contains(where: { matchesType(value, $0) }) {
                    errors.append("\(path): expected \(types.joined(separator: "|")), found \(value.typeName)")
                }
            case "properties":
                guard case .object(let props) = argument, case .object(let fields) = value else { continue }
                for (name, sub) in props {
                    if let field = fields[name] { validate(field, against: sub, path: "\(path).\(name)", errors: &errors) }
                }
            case "required":
                guard case .array(let names) = argument, case .object(let fields) = value else { continue }
                for case .string(let name) in names where fields[name] == nil {
                    errors.append("\(path): missing required '\(name)'")
                }
            case "additionalProperties":
                guard case .object(let fields) = value else { continue }
                var declared: Set<String> = []
                if case .object(let props)? = s["properties"] { declared = Set(props.keys) }
                for (name, field) in fields where !declared.contains(name) {
                    switch argument {
                    case .bool(false): errors.append("\(path): unexpected property '\(name)'")
                    case .object: validate(field, against: argument, path: "\(path).\(name)", errors: &errors)
                    default: break
                    }
                }
            case "items":
                guard case .array(let items) = value else { continue }
                for (i, item) in items.enumerated() { validate(item, against: argument, path: "\(path)[\(i)]", errors: &errors) }
            case "enum":
                guard case .array(let allowed) = argument else { continue }
                if !allowed.contains(value) { errors.append("\(path): \(value) not in enum") }
            case "const":
                if value != argument { errors.append("\(path): \(value) is not the constant \(argument)") }
            case "minimum":
                guard case .number(let minText) = argument, case .number(let text) = value,
                    let minimum = Double(minText), let number = Double(text)
                else { continue }
                if number < minimum { errors.append("\(path): \(text) < minimum \(minText)") }
            case "pattern":
                guard case .string(let pattern) = argument, case .string(let text) = value else { continue }
                do {
                    let regex = try Regex(pattern)
                    if (try regex.firstMatch(in: text)) == nil { errors.append("\(path): '\(text)' does not match \(pattern)") }
                } catch {
                    errors.append("\(path): invalid pattern \(pattern)")
                }
            default:
                errors.append("\(path): unsupported keyword '\(keyword)'")
            }
        }
    }
}

enum Schemas {
    static func load(_ type: EventType) throws -> JSONValue {
        let url = try Repo.root().appendingPathComponent("topics/schemas/\(type.ceType).json")
        return try JSONValue.parse(Array(try Data(contentsOf: url)))
    }

    static func object(_ value: JSONValue) throws -> [String: JSONValue] {
        guard case .object(let o) = value else { throw Repo.RepoError.notFound }
        return o
    }

    static func strings(_ value: JSONValue?) -> [String] {
        guard case .array(let list)? = value else { return [] }
        return list.compactMap { if case .string(let s) = $0 { s } else { nil } }
    }
}

@Suite struct SchemaTests {
    @Test func oneSchemaFilePerEventTypeAndVersion() throws {
        let dir = try Repo.root().appendingPathComponent("topics/schemas")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }
        #expect(Set(files) == Set(EventRegistry.knownTypes.map { "\($0.ceType).json" }))
        for type in EventRegistry.knownTypes {
            let schema = try Schemas.object(try Schemas.load(type))
            #expect(schema["$schema"] == .string("https://json-schema.org/draft/2020-12/schema"))
            guard case .string(let id)? = schema["$id"], case .string(let title)? = schema["title"],
                case .string(let description)? = schema["description"]
            else {
                Issue.record("\(type): $id, title and description are required")
                continue
            }
            #expect(id.hasSuffix("/\(type.ceType).json"))
            #expect(title.contains(type.ceType))
            #expect(!description.isEmpty)
        }
    }

    @Test func everySampleValidatesAgainstItsSchema() throws {
        for event in try EventSamples.full() + EventSamples.minimal() {
            let type = Swift.type(of: event.payload).eventType
            let validator = SchemaValidator(root: try Schemas.load(type))
            let instance = try JSONValue.parse(try EventCodec.encode(event.payload))
            let errors = validator.validate(instance)
            #expect(errors.isEmpty, "\(type): \(errors)")
        }
    }

    @Test func validatorRejectsViolations() throws {
        let placed = try #require(try EventSamples.full().first { if case .orderPlaced = $0 { true } else { false } })
        let validator = SchemaValidator(root: try Schemas.load(OrderPlaced.eventType))
        guard case .object(var fields) = try JSONValue.parse(try EventCodec.encode(placed.payload)) else {
            Issue.record("not an object")
            return
        }
        let pristine = fields
        fields.removeValue(forKey: "orderId")
        #expect(validator.validate(.object(fields)) == ["$: missing required 'orderId'"])
        fields = pristine
        fields["surprise"] = .bool(true)
        #expect(validator.validate(.object(fields)) == ["$: unexpected property 'surprise'"])
        fields = pristine
        fields["serviceLevel"] = .string("teleport")
        #expect(validator.validate(.object(fields)).count == 1)
        fields = pristine
        fields["placedAt"] = .string("yesterday")
        #expect(validator.validate(.object(fields)).count == 1)
        fields = pristine
        fields["currency"] = .string("usd")
        #expect(validator.validate(.object(fields)).count == 1)
        fields = pristine
        if case .array(var lines)? = fields["lines"], case .object(var line) = lines[0] {
            line["quantity"] = .number("0")
            lines[0] = .object(line)
            fields["lines"] = .array(lines)
        }
        #expect(validator.validate(.object(fields)) == ["$.lines[0].quantity: 0 < minimum 1"])
        fields = pristine
        fields["totals"] = .number("1.5")
        #expect(validator.validate(.object(fields)) == ["$.totals: expected object, found number"])
    }

    /// The schema's required list must be exactly the non-optional Swift properties, and its
    /// properties exactly all of them; the encoder must emit the required keys when optionals are nil
    /// and every property when they are set.
    @Test func requiredPropertiesMatchTheEncoder() throws {
        let minimal = try EventSamples.minimal()
        for (index, event) in try EventSamples.full().enumerated() {
            let type = Swift.type(of: event.payload).eventType
            let schema = try Schemas.object(try Schemas.load(type))
            let required = Set(Schemas.strings(schema["required"]))
            guard case .object(let properties)? = schema["properties"] else {
                Issue.record("\(type) has no properties")
                continue
            }
            let mirror = Mirror(reflecting: event.payload)
            var all: Set<String> = []
            var nonOptional: Set<String> = []
            for child in mirror.children {
                guard let label = child.label else { continue }
                all.insert(label)
                if Mirror(reflecting: child.value).displayStyle != .optional { nonOptional.insert(label) }
            }
            #expect(required == nonOptional, "\(type) required")
            #expect(Set(properties.keys) == all, "\(type) properties")

            let fullKeys = try Schemas.object(try JSONValue.parse(try EventCodec.encode(event.payload))).keys
            #expect(Set(fullKeys) == all, "\(type) full sample keys")
            let minimalKeys = try Schemas.object(try JSONValue.parse(try EventCodec.encode(minimal[index].payload))).keys
            #expect(Set(minimalKeys) == required, "\(type) minimal sample keys")
        }
    }
}
