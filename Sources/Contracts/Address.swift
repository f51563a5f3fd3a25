/// An ISO 3166-1 alpha-2 country code (`DE`, `US`).
///
/// Validated against the officially assigned codes because destination
/// country drives tax, carrier zones and sellability rules; a typo must be
/// caught at intake, not at the carrier.
public struct CountryCode: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The two uppercase letters.
    public let code: String

    /// Validates `code` against the assigned ISO 3166-1 alpha-2 codes.
    public init(_ code: String) throws(ContractError) {
        guard code.utf8.count == 2, Self.assigned.contains(code) else {
            throw .invalidField(path: "country", reason: "'\(code)' is not an ISO 3166-1 alpha-2 country code")
        }
        self.code = code
    }

    /// The code itself.
    public var description: String { code }

    /// Decodes from the bare code string.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Encodes as the bare code string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(code)
    }

    static let assigned: Set<String> = Set(
        """
        AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW \
        BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI \
        FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN \
        IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME \
        MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF \
        PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV \
        SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE \
        YT ZA ZM ZW
        """.split(separator: " ").map(String.init))
}

/// A postal address as carriers and tax engines need it.
public struct Address: Sendable, Hashable, Codable {
    /// Recipient name as printed on the label.
    public var name: String
    /// Street lines, in order; at least one.
    public var lines: [String]
    /// City or locality.
    public var city: String
    /// State, province or region code, where the country uses one.
    public var region: String?
    /// Postal code, absent in countries without one.
    public var postalCode: String?
    /// Destination country; drives sellability and carrier zones.
    public var country: CountryCode
    /// Phone for the carrier, if the channel gave one.
    public var phone: String?
    /// Email for delivery notifications, if the channel gave one.
    public var email: String?

    /// Builds an address; validation of the country happens in `CountryCode`.
    public init(
        name: String, lines: [String], city: String, region: String? = nil, postalCode: String? = nil,
        country: CountryCode, phone: String? = nil, email: String? = nil
    ) {
        self.name = name
        self.lines = lines
        self.city = city
        self.region = region
        self.postalCode = postalCode
        self.country = country
        self.phone = phone
        self.email = email
    }
}
