import Foundation

/// How a document's number is printed. The numbers themselves are given out by the
/// `invoice-numbering` stage, the one writer of each entity's series
/// (docs/RULES.md, *Numbering*).
public enum InvoiceNumber {
    /// `<prefix>-<year of issue>-<sequence, six digits or more>`, e.g. `DE-2026-000042`.
    /// The year is the UTC year of issue; the sequence does not restart with the year (an
    /// entity that wants yearly numbering uses a series per year).
    public static func format(prefix: String, sequence: Int64, issuedAt: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let year = calendar.component(.year, from: issuedAt)
        let digits = String(sequence)
        return "\(prefix)-\(year)-\(String(repeating: "0", count: max(0, 6 - digits.count)))\(digits)"
    }
}
