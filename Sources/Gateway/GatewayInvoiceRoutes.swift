import Contracts
import Foundation
import Hummingbird
import Invoicing

extension GatewayRoutes {
    static let invoice = Route(method: "GET", path: "/v1/invoices/{number}")
    static let orderInvoices = Route(method: "GET", path: "/v1/orders/{orderId}/invoices")
}

/// An invoice or credit note as the order's list shows it.
struct InvoiceSummary: Encodable {
    var number: String
    var kind: InvoiceKind
    var issuedAt: Date
    var legalEntity: String
    var cause: String
    var correctedInvoice: String?
    var grossTotal: Money
    var taxTotal: Money
    /// Where the printable and the UBL documents are.
    var html: String
    var xml: String

    init(_ invoice: Invoice) {
        number = invoice.number
        kind = invoice.kind
        issuedAt = invoice.issuedAt
        legalEntity = invoice.legalEntity
        cause = invoice.cause
        correctedInvoice = invoice.correctedInvoice
        grossTotal = invoice.grossTotal
        taxTotal = invoice.taxTotal
        html = "/v1/invoices/\(invoice.number)"
        xml = "/v1/invoices/\(invoice.number).xml"
    }
}

extension Gateway {
    /// Invoices and credit notes from oms.invoices: the printable HTML, the UBL 2.1 /
    /// Peppol BIS Billing 3.0 XML (`<number>.xml`), and an order's list. Bearer token:
    /// they carry names and addresses.
    func invoiceRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        add(GatewayRoutes.invoice, to: routes, media: { call in
            call.parameter("number").hasSuffix(".xml") ? "application/xml" : "text/html; charset=utf-8"
        }) { call throws(GatewayError) in
            let requested = call.parameter("number")
            let xml = requested.hasSuffix(".xml")
            let number = xml ? String(requested.dropLast(4)) : requested
            let invoice = try self.invoice(number: number)
            do {
                if xml { return (200, Array(try UBLDocument.xml(invoice).utf8)) }
                guard let template = self.configuration.invoiceTemplate else {
                    throw GatewayError(status: 503, code: "no_template", message: "the gateway has no invoice template (gateway.invoice.template)")
                }
                return (200, Array(try InvoiceHTML.render(invoice, template: template).utf8))
            } catch let error as GatewayError {
                throw error
            } catch {
                throw GatewayError(status: 500, code: "rendering", message: "invoice \(number) could not be rendered: \(error)")
            }
        }

        add(GatewayRoutes.orderInvoices, to: routes) { call throws(GatewayError) in
            let orderId = call.parameter("orderId")
            let documents = try self.invoices(orderId: orderId).sorted { ($0.issuedAt, $0.number) < ($1.issuedAt, $1.number) }
            return (200, try Self.encode(documents.map(InvoiceSummary.init)))
        }
        return routes
    }

    private func invoice(number: String) throws(GatewayError) -> Invoice {
        var found: Invoice?
        for case .invoiceIssued(let issued) in try currentTables().invoices.values.values where issued.invoice.number == number {
            found = issued.invoice
        }
        guard let found else { throw GatewayError(status: 404, code: "not_found", message: "no invoice or credit note numbered \(number)") }
        return found
    }

    private func invoices(orderId: String) throws(GatewayError) -> [Invoice] {
        var found: [Invoice] = []
        for case .invoiceIssued(let issued) in try currentTables().invoices.values.values where issued.orderId == orderId { found.append(issued.invoice) }
        return found
    }
}
