import Foundation

extension TrackingStatus {
    /// Maps an EasyPost tracker status. `failure` (delivery failed) is a failed
    /// attempt; `error` (EasyPost/carrier problem) is an exception.
    public static func fromEasyPost(_ status: String) -> TrackingStatus {
        switch status {
        case "pre_transit": return .preTransit
        case "in_transit": return .inTransit
        case "out_for_delivery": return .outForDelivery
        case "delivered": return .delivered
        case "available_for_pickup": return .availableForPickup
        case "return_to_sender": return .returnToSender
        case "failure": return .failedAttempt
        case "cancelled": return .cancelled
        case "error": return .exception
        default: return .unknown
        }
    }

    /// Maps an AfterShip delivery tag and subtag. `Pending` and `InfoReceived`
    /// mean the carrier has not scanned the parcel yet; `Expired` (no scans for
    /// a long time) needs an operator, hence exception. AfterShip files returns
    /// under `Exception` with subtags `Exception_010` (returning to sender) and
    /// `Exception_011` (returned to sender), which the vocabulary has a status for.
    public static func fromAfterShip(tag: String, subtag: String? = nil) -> TrackingStatus {
        if tag == "Exception", subtag == "Exception_010" || subtag == "Exception_011" { return .returnToSender }
        switch tag {
        case "Pending", "InfoReceived": return .preTransit
        case "InTransit": return .inTransit
        case "OutForDelivery": return .outForDelivery
        case "AttemptFail": return .failedAttempt
        case "Delivered": return .delivered
        case "AvailableForPickup": return .availableForPickup
        case "Exception", "Expired": return .exception
        default: return .unknown
        }
    }
}

/// EasyPost `tracker.updated` (and `tracker.created`) webhook Event.
///
/// The tracker is in `result`; its `tracking_details` are the scan history.
/// The latest detail gives the time, location and message of the update. EasyPost
/// writes carriers as `USPS`, `UPS`; they become the lowercase OMS codes.
public enum EasyPostTrackerAdapter {
    /// Decodes an Event body.
    public static func decode<Body: Collection>(_ body: Body, limits: AdapterLimits = .default) throws(ContractError)
        -> CarrierTrackingUpdate where Body.Element == UInt8
    {
        let root = try JSONObjectReader(try limits.parse(body), path: "$")
        let description = try root.string("description")
        guard description == "tracker.updated" || description == "tracker.created" else {
            throw .invalidField(path: root.at("description"), reason: "'\(description)' is not a tracker event")
        }
        let tracker = try root.object("result")
        let rawStatus = try tracker.nonEmptyString("status")
        var checkpoints: [TrackingCheckpoint] = []
        for detail in try tracker.objects("tracking_details", required: false) {
            let raw = try detail.optionalText("status") ?? "unknown"
            var location: TrackingLocation?
            if let l = try detail.optionalObject("tracking_location") {
                location = TrackingLocation(
                    city: try l.optionalText("city"), region: try l.optionalText("state"),
                    postalCode: try l.optionalText("zip"), country: try l.optionalText("country")
                ).nilIfEmpty
            }
            checkpoints.append(
                TrackingCheckpoint(
                    status: .fromEasyPost(raw), rawStatus: raw, occurredAt: try detail.date("datetime"),
                    location: location, message: try detail.optionalText("message")))
        }
        checkpoints.sort { $0.occurredAt < $1.occurredAt }
        let latest = checkpoints.last
        let occurredAt: Date
        if let latest {
            occurredAt = latest.occurredAt
        } else {
            occurredAt = try tracker.date("updated_at")
        }
        return CarrierTrackingUpdate(
            source: .easypost, externalEventId: try root.optionalText("id"),
            carrier: try tracker.nonEmptyString("carrier").lowercased(), trackingNumber: try tracker.nonEmptyString("tracking_code"),
            status: .fromEasyPost(rawStatus), rawStatus: rawStatus, occurredAt: occurredAt,
            location: latest?.location, message: latest?.message,
            estimatedDelivery: try tracker.optionalDate("est_delivery_date"), checkpoints: checkpoints)
    }
}

/// AfterShip tracking webhook (`event`, `event_id`, `msg` = the tracking).
///
/// AfterShip checkpoint times are in the checkpoint's local time and may lack
/// an offset or be a bare date; those are read as UTC.
public enum AfterShipTrackingAdapter {
    /// Decodes a webhook body.
    public static func decode<Body: Collection>(_ body: Body, limits: AdapterLimits = .default) throws(ContractError)
        -> CarrierTrackingUpdate where Body.Element == UInt8
    {
        let root = try JSONObjectReader(try limits.parse(body), path: "$")
        let msg = try root.object("msg")
        let tag = try msg.nonEmptyString("tag")
        let subtag = try msg.optionalText("subtag")
        var checkpoints: [TrackingCheckpoint] = []
        for checkpoint in try msg.objects("checkpoints", required: false) {
            let cpTag = try checkpoint.optionalText("tag") ?? "Unknown"
            let cpSubtag = try checkpoint.optionalText("subtag")
            let location = TrackingLocation(
                city: try checkpoint.optionalText("city"), region: try checkpoint.optionalText("state"),
                postalCode: try checkpoint.optionalText("zip"), country: try checkpoint.optionalText("country_iso3")
            ).nilIfEmpty
            checkpoints.append(
                TrackingCheckpoint(
                    status: .fromAfterShip(tag: cpTag, subtag: cpSubtag), rawStatus: raw(cpTag, cpSubtag),
                    occurredAt: try checkpoint.date("checkpoint_time", lenient: true), location: location,
                    message: try checkpoint.optionalText("message")))
        }
        checkpoints.sort { $0.occurredAt < $1.occurredAt }
        let latest = checkpoints.last
        let occurredAt: Date
        if let latest {
            occurredAt = latest.occurredAt
        } else if let updated = try msg.optionalDate("updated_at", lenient: true) {
            occurredAt = updated
        } else {
            let ts = try root.integer("ts")
            occurredAt = Date(timeIntervalSince1970: TimeInterval(ts))
        }
        var estimate = try msg.optionalDate("expected_delivery", lenient: true)
        if estimate == nil, let courier = try msg.optionalObject("courier_estimated_delivery_date") {
            estimate = try courier.optionalDate("estimated_delivery_date", lenient: true)
        }
        return CarrierTrackingUpdate(
            source: .aftership, externalEventId: try root.optionalText("event_id"),
            carrier: try msg.nonEmptyString("slug"), trackingNumber: try msg.nonEmptyString("tracking_number"),
            status: .fromAfterShip(tag: tag, subtag: subtag), rawStatus: raw(tag, subtag), occurredAt: occurredAt,
            location: latest?.location, message: try msg.optionalText("subtag_message") ?? latest?.message,
            estimatedDelivery: estimate, checkpoints: checkpoints)
    }

    /// Tag plus subtag (`Exception/Exception_011`), so the raw value keeps the detail.
    static func raw(_ tag: String, _ subtag: String?) -> String {
        guard let subtag, !subtag.isEmpty else { return tag }
        return "\(tag)/\(subtag)"
    }
}

/// OrderFleet's generic carrier push, for carriers integrated directly.
///
/// ```json
/// {"carrier": "dhl", "trackingNumber": "JD014600006281230704", "status": "in_transit",
///  "rawStatus": "transit", "occurredAt": "2026-03-02T08:00:00Z", "eventId": "e-1",
///  "location": {"city": "Leipzig", "country": "DE"}, "message": "Arrived at hub",
///  "estimatedDelivery": "2026-03-03T18:00:00Z"}
/// ```
/// `status` should be a vocabulary value; anything else becomes `unknown`
/// with the value kept as the raw status.
public enum GenericTrackingAdapter {
    /// Decodes a generic body.
    public static func decode<Body: Collection>(_ body: Body, limits: AdapterLimits = .default) throws(ContractError)
        -> CarrierTrackingUpdate where Body.Element == UInt8
    {
        let root = try JSONObjectReader(try limits.parse(body), path: "$")
        let statusText = try root.nonEmptyString("status")
        let status = TrackingStatus(rawValue: statusText) ?? .unknown
        var location: TrackingLocation?
        if let l = try root.optionalObject("location") {
            location = TrackingLocation(
                city: try l.optionalText("city"), region: try l.optionalText("region"),
                postalCode: try l.optionalText("postalCode"), country: try l.optionalText("country")
            ).nilIfEmpty
        }
        let rawStatus = try root.optionalText("rawStatus") ?? statusText
        let occurredAt = try root.date("occurredAt")
        let message = try root.optionalText("message")
        return CarrierTrackingUpdate(
            source: .generic, externalEventId: try root.optionalText("eventId"),
            carrier: try root.nonEmptyString("carrier"), trackingNumber: try root.nonEmptyString("trackingNumber"),
            status: status, rawStatus: rawStatus, occurredAt: occurredAt, location: location, message: message,
            estimatedDelivery: try root.optionalDate("estimatedDelivery"),
            checkpoints: [
                TrackingCheckpoint(
                    status: status, rawStatus: rawStatus, occurredAt: occurredAt, location: location, message: message)
            ])
    }
}

extension TrackingLocation {
    /// nil when the carrier sent a location object with every field empty.
    var nilIfEmpty: TrackingLocation? {
        city == nil && region == nil && postalCode == nil && country == nil ? nil : self
    }
}
