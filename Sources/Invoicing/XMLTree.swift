import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A parsed XML element, by local name (namespaces resolved and dropped: a UBL document
/// may bind `cbc` and `cac` to any prefix, so the checker must not depend on them).
struct XMLNode: Sendable {
    /// Local name, e.g. `TaxAmount`.
    var name: String
    /// The namespace URI, empty when none.
    var namespace: String
    /// Attributes by local name.
    var attributes: [String: String]
    /// Text content, trimmed.
    var text: String
    /// Child elements in document order.
    var children: [XMLNode]

    /// The first child named `name`.
    func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }

    /// Every child named `name`.
    func all(_ name: String) -> [XMLNode] { children.filter { $0.name == name } }

    /// The element at a `/`-separated path of local names below this one.
    func at(_ path: String) -> XMLNode? {
        var node: XMLNode? = self
        for step in path.split(separator: "/") { node = node?.child(String(step)) }
        return node
    }

    /// The trimmed text at `path`, nil when the element is absent or empty.
    func text(_ path: String) -> String? {
        guard let text = at(path)?.text, !text.isEmpty else { return nil }
        return text
    }

    /// Parses `xml`; nil with the parser's message when it is not well-formed.
    static func parse(_ xml: String) -> Result<XMLNode, XMLParseFailure> {
        let builder = TreeBuilder()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.shouldProcessNamespaces = true
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else {
            return .failure(XMLParseFailure(message: parser.parserError.map { "\($0)" } ?? "no root element"))
        }
        return .success(root)
    }
}

/// Why a document could not be parsed.
struct XMLParseFailure: Error, Sendable {
    var message: String
}

/// Collects XMLParser's events into ``XMLNode``s.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    var stack: [XMLNode] = []
    var root: XMLNode?

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        var local: [String: String] = [:]
        for (key, value) in attributes { local[String(key.split(separator: ":").last ?? Substring(key))] = value }
        stack.append(XMLNode(name: elementName, namespace: namespaceURI ?? "", attributes: local, text: "", children: []))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard !stack.isEmpty else { return }
        stack[stack.count - 1].text += string
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        guard var node = stack.popLast() else { return }
        node.text = node.text.trimmingCharacters(in: .whitespacesAndNewlines)
        if stack.isEmpty { root = node } else { stack[stack.count - 1].children.append(node) }
    }
}
