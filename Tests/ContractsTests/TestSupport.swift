import Foundation
import Testing

@testable import Contracts

enum Fixtures {
    /// Bytes of `Fixtures/<name>`, copied into the test bundle.
    static func bytes(_ name: String) throws -> [UInt8] {
        let url = try #require(
            Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"),
            "fixture \(name) missing")
        return Array(try Data(contentsOf: url))
    }

    /// A fixture parsed, edited as a JSON tree and re-serialized, for hostile variants of realistic payloads.
    static func edited(_ name: String, _ edit: (inout [String: Any]) throws -> Void) throws -> [UInt8] {
        var object = try #require(try JSONSerialization.jsonObject(with: Data(try bytes(name))) as? [String: Any])
        try edit(&object)
        return Array(try JSONSerialization.data(withJSONObject: object))
    }
}

enum Repo {
    /// The repository root: the first ancestor of this file containing topics/topics.yaml.
    static func root() throws -> URL {
        var dir = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("topics/topics.yaml").path) {
                return dir
            }
            dir = dir.deletingLastPathComponent()
        }
        throw RepoError.notFound
    }

    enum RepoError: Error { case notFound }

    static func text(_ relative: String) throws -> String {
        try String(contentsOf: try root().appendingPathComponent(relative), encoding: .utf8)
    }
}

/// Runs `body` and returns the ContractError it throws, recording an issue if it throws nothing or something else.
func contractError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> ContractError? {
    do {
        try body()
        Issue.record("expected a ContractError, nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as ContractError {
        return error
    } catch {
        Issue.record("expected a ContractError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

func date(_ text: String) throws -> Date {
    try #require(RFC3339.parse(text), "bad test date \(text)")
}
