# Single description of the OMS event model, used to generate the Swift
# structs, the JSON Schemas and the AsyncAPI document.

STRUCTS = {}   # name -> dict(doc, fields)
ENUMS = {}     # name -> dict(doc, cases=[(raw, doc)])
EVENTS = []    # list of dict

def S(name, doc, fields):
    STRUCTS[name] = dict(doc=doc, fields=fields)

def E(name, doc, cases):
    ENUMS[name] = dict(doc=doc, cases=cases)

def EV(name, type_, version, topic, key, subject, doc, fields):
    EVENTS.append(dict(name=name, type=type_, version=version, topic=topic, key=key, subject=subject, doc=doc, fields=fields))

# field: (name, swiftType, doc[, extraSchema])

E("PaymentAuthorizationStatus", "State of the channel's payment at capture time; payment checks decide from it.", [
    ("pending", "No authorization yet (e.g. bank transfer awaited)."),
    ("authorized", "Funds authorized, not captured."),
    ("captured", "Funds captured by the channel or marketplace."),
    ("partially_captured", "Only part of the amount captured."),
    ("voided", "Authorization voided before capture."),
])
E("ServiceLevel", "Delivery speed the customer paid for; drives carrier choice and the promise.", [
    ("standard", "Ground / economy."),
    ("expedited", "Faster than standard, usually 2-3 days."),
    ("next_day", "Next business day."),
    ("same_day", "Same-day courier."),
])
E("ChannelFormat", "Which adapter understands an inbound payload.", [
    ("shopify_order", "Shopify `orders/create` webhook, REST Order JSON."),
    ("amazon_order", "Amazon SP-API Orders API order with its OrderItems."),
    ("amazon_order_change", "Amazon SP-API `ORDER_CHANGE` notification."),
    ("shopify_order_updated", "Shopify `orders/updated` webhook: the order as it is now; a new ship-to address and units removed by order edits become commands."),
    ("shopify_order_cancelled", "Shopify `orders/cancelled` webhook: a cancel command."),
    ("pos_sale", "OrderFleet store POS sale format."),
    ("canonical", "The canonical order JSON itself."),
])
E("ExchangeReservation", "When an exchange's replacement is placed and its stock reserved.", [
    ("authorization", "When the exchange is authorized; it ships once the return is received."),
    ("received", "When the return is received; it ships at once."),
])
E("ReturnStatus", "Where a return stands.", [
    ("awaiting_delivery", "Asked before the returns stage read the order's delivery; decided when it does (the returns stage's own record only)."),
    ("authorized", "Authorized with an RMA and a return label; the parcel is awaited."),
    ("rejected", "Refused (the reasons are on ReturnRejected)."),
    ("received", "The parcel arrived: restocked or written off, and refunded."),
    ("review", "Received after the RMA expired: restocked, its refund waits for an operator."),
    ("expired", "The RMA expired with no parcel."),
])
E("ExchangeOutcome", "How an exchange ended.", [
    ("replacement", "The replacement was released to ship (the return was received)."),
    ("refund", "No replacement: the returned units are refunded instead (out of stock, cancelled, or the RMA expired)."),
])
E("FulfilmentMode", "How a location fulfils a request, from its kind and the order.", [
    ("warehouse", "An own warehouse picks and packs; the OMS buys the label from the packed parcels."),
    ("ship_from_store", "A store picks and packs a parcel for delivery."),
    ("pickup", "A store holds the goods for the customer (buy online, pick up in store)."),
    ("third_party", "A 3PL picks and packs, and may ship with its own label."),
    ("drop_ship", "A vendor ships its own goods with its own label."),
])
E("FulfilmentUpdateKind", "What a location reports about a fulfilment request.", [
    ("accepted", "The location took the request."),
    ("rejected", "The location refuses it (closed, no capacity, cannot find the goods); everything is re-sourced."),
    ("picked", "Picking ended: `lines` says how many units of each line were found; the rest is short."),
    ("packed", "Packed into `parcels`; the OMS buys the label."),
    ("shipped", "Handed to a carrier under the location's own label (`carrier`, `trackingNumber`)."),
    ("ready_for_pickup", "A pick-up order waits for its customer at the store."),
    ("picked_up", "The customer collected a pick-up order."),
])
E("FulfilmentStatus", "Where one fulfilment request stands.", [
    ("requested", "Sent to the location; no answer yet."),
    ("accepted", "The location took it."),
    ("picked", "Picked (perhaps short: the missing units went back to allocation)."),
    ("packed", "Packed; shipping bought the label."),
    ("shipped", "The location shipped it under its own label."),
    ("ready_for_pickup", "Waits for the customer at the store."),
    ("picked_up", "The customer collected it."),
    ("withdrawn", "Rejected by the location, or withdrawn after its SLA: its units were re-sourced."),
    ("cancelled", "The order was cancelled; the location was told to stop."),
])
E("ShortfallCause", "Why units a location was asked for come back to allocation.", [
    ("short_pick", "The location could not find them: its stock count was wrong and is corrected."),
    ("rejected", "The location refused the request; its stock is not corrected."),
    ("withdrawn", "The location did not answer or ship within its SLA; the request was withdrawn."),
])
E("AdjustmentMode", "How an inventory adjustment from WMS/ERP is applied.", [
    ("absolute", "Set on-hand to the quantity (a stock count)."),
    ("delta", "Add the (possibly negative) quantity to on-hand."),
])
E("InventoryOutcome", "What the inventory stage did with a command.", [
    ("reserved", "Quantity reserved."),
    ("refused", "Not enough available; nothing reserved."),
    ("released", "Reservation released."),
    ("committed", "Reservation turned into a shipment (on hand decreased)."),
    ("restocked", "Returned units added back to on hand."),
    ("backorder_filled", "Backordered units reserved as stock arrived, in fill order (no ReserveInventory asked for them)."),
])
E("AllocationStatus", "Progress of allocation for one order.", [
    ("awaiting_payment", "Order known; the payment decision is not in yet."),
    ("awaiting_order", "Payment approved; the order itself not read yet (topics are read side by side)."),
    ("planning", "Computing a sourcing plan."),
    ("reserving", "Waiting for reservation results."),
    ("allocated", "Every line reserved."),
    ("partially_allocated", "Some lines reserved, the rest backordered."),
    ("backordered", "Nothing could be reserved."),
    ("cancelled", "Order cancelled; reservations released."),
])
E("BackorderPolicy", "What allocation does with units it cannot source.", [
    ("backorder", "Keep what is reserved; the missing units wait for stock."),
    ("cancel_lines", "Keep what is reserved; the missing units are cancelled."),
    ("hold_order", "Release everything; the whole order waits until it can ship complete."),
])
E("LocationType", "Kind of stock location; sourcing rules differ per kind.", [
    ("warehouse", "Own distribution centre."),
    ("store", "Retail store; ships only SKUs flagged for ship-from-store, and serves pick-up orders."),
    ("third_party_logistics", "A 3PL's warehouse, sourced like an own warehouse."),
    ("drop_ship", "A supplier that ships its own SKUs directly; never split from."),
])
E("TrackingStatus", "The one tracking vocabulary every carrier format is normalized to.", [
    ("pre_transit", "Label created, not yet scanned by the carrier."),
    ("in_transit", "Moving through the carrier network."),
    ("out_for_delivery", "On the vehicle for delivery today."),
    ("available_for_pickup", "Waiting at a pickup point."),
    ("delivered", "Delivered."),
    ("failed_attempt", "Delivery attempted and failed."),
    ("return_to_sender", "Being returned to the shipper."),
    ("exception", "Carrier reports a problem."),
    ("cancelled", "Shipment cancelled at the carrier."),
    ("unknown", "Status not understood; the raw carrier value is kept alongside."),
])
E("TrackingSource", "Which carrier integration produced a tracking update.", [
    ("easypost", "EasyPost `tracker.updated` webhook."),
    ("aftership", "AfterShip tracking webhook."),
    ("generic", "OrderFleet generic carrier format."),
])
E("ReturnDisposition", "What happens to a received return unit.", [
    ("restock", "Back to sellable stock."),
    ("write_off", "Damaged or unsellable; written off."),
])
E("OrderStatus", "Customer- and operator-visible order state in the order view.", [
    ("placed", "Accepted by intake."),
    ("rejected", "Rejected by intake."),
    ("held", "Held for fraud review."),
    ("declined", "Payment declined."),
    ("approved", "Payment approved, awaiting allocation."),
    ("allocated", "Stock reserved."),
    ("partially_allocated", "Some stock reserved, rest backordered."),
    ("backordered", "Waiting for stock."),
    ("partially_shipped", "Some reserved units shipped, others not yet."),
    ("shipped", "Every reserved unit handed to a carrier; not all delivered."),
    ("delivered", "Every shipment delivered."),
    ("cancelled", "Cancelled before shipment."),
    ("return_requested", "A return is authorized and on its way back."),
    ("partially_returned", "Some delivered units came back."),
    ("returned", "Every delivered unit came back."),
])
E("NotificationKind", "Which customer message to send.", [
    ("confirmed", "Order confirmed."),
    ("shipped", "Shipment on its way."),
    ("out_for_delivery", "Arriving today."),
    ("delivered", "Delivered."),
    ("delayed", "Carrier estimate passed the promise."),
    ("refunded", "Refund issued."),
    ("cancelled", "Order cancelled."),
    ("review_invitation", "Invitation to review the order, a configured time after delivery."),
    ("order_changed", "The order was changed after it was placed: a new ship-to address or cancelled lines."),
    ("return_expired", "An authorized return was not sent back before its RMA expired."),
    ("store_credit", "Store credit was granted (a goodwill gesture)."),
    ("exchange_refund", "An exchange's replacement cannot be sent: the returned units are refunded instead."),
    ("ready_for_pickup", "A pick-up order waits at its store."),
])
E("OrderChangeKind", "Which change to an order in flight a decision is about.", [
    ("address", "A new ship-to address (UpdateShippingAddress)."),
    ("lines", "Cancelled units of lines (CancelOrderLines)."),
])
E("ChannelAction", "What a channel is told about one of its orders.", [
    ("ship", "A shipment left: mark its lines fulfilled with carrier and tracking."),
    ("cancel", "The order was cancelled in the OMS."),
    ("refund", "Money was refunded (a return or a goodwill refund)."),
])
E("DeliveryState", "Where one outbound command stands with its external system.", [
    ("attempting", "A call passed its point of no return; its answer is not recorded yet."),
    ("delivered", "The system took the effect."),
    ("rejected", "The system refused it with its reason; an operator re-drives it from the dead letters."),
    ("skipped", "Nothing to do (opted out, no recipient, channel without sync)."),
    ("unknown", "The answer was lost and the system cannot be asked; an operator decides."),
    ("failed", "Retries ran out before the system took it; re-driven from the dead letters."),
    ("retrying", "A call failed before the effect; the next attempt is due at `nextAttemptAt` (webhook deliveries, retried off the partition)."),
])
E("WebhookStatus", "Whether a webhook subscription gets deliveries.", [
    ("active", "Deliveries are made."),
    ("disabled", "No deliveries: switched off by an operator, or automatically after persistent failure."),
])
E("AlertSeverity", "How urgently operators must act on an SLA alert.", [
    ("warning", "Approaching or just past the SLA."),
    ("critical", "Far past the SLA."),
])
E("PaymentEntryKind", "Kind of money movement in the order view.", [
    ("authorization", "Channel authorization."),
    ("capture", "Capture requested."),
    ("refund", "Refund requested."),
    ("void", "Void requested."),
    ("captured", "The payment provider captured."),
    ("capture_failed", "The payment provider did not capture."),
    ("refunded", "The payment provider refunded."),
    ("refund_failed", "The payment provider did not refund."),
    ("voided", "The payment provider released the authorization."),
    ("void_failed", "The payment provider did not release the authorization."),
])

S("Reason", "A machine-readable code plus a human message, so rules can be counted and explained.", [
    ("code", "String", "Stable code, e.g. `sku_unknown`; reports group by it."),
    ("message", "String", "Explanation for operators and customers."),
])
S("Customer", "The buyer as far as the channel identifies them.", [
    ("id", "String?", "Channel customer id; absent for guest checkouts."),
    ("email", "String?", "Email for notifications and fraud velocity checks."),
])
S("OrderLine", "One ordered SKU. Amounts are per line (discount and tax for the whole quantity).", [
    ("lineId", "String", "Line id, unique in the order (channel line id when it has one)."),
    ("sku", "String", "Seller SKU."),
    ("quantity", "Int", "Units ordered; at least 1.", {"minimum": 1}),
    ("unitPrice", "Money", "Price of one unit before discount and tax."),
    ("discount", "Money", "Total discount on the line."),
    ("tax", "Money", "Total tax on the line."),
])
S("ShippingCharge", "What the customer pays for shipping and how it was described.", [
    ("method", "String?", "Channel's shipping method title."),
    ("amount", "Money", "Shipping charged, before shipping discounts."),
])
S("OrderTotals", "Order totals as the channel computed them; intake checks them against the lines.", [
    ("subtotal", "Money", "Sum of unit price times quantity."),
    ("discount", "Money", "All discounts."),
    ("shipping", "Money", "Shipping charged."),
    ("tax", "Money", "All taxes."),
    ("total", "Money", "What the customer pays."),
    ("taxIncluded", "Bool", "Prices already include tax (EU VAT style), so tax is not added on top."),
])
S("PaymentAuthorization", "The channel's payment state for the order.", [
    ("status", "PaymentAuthorizationStatus", "Authorization state."),
    ("amount", "Money", "Amount authorized or captured."),
    ("reference", "String?", "Gateway or marketplace reference."),
])
S("CanonicalOrder", "A channel order in the OMS's own shape: what every channel adapter produces and intake consumes.", [
    ("channel", "String", "Sales channel, e.g. `shopify`, `amazon`, `pos`, `web`."),
    ("externalOrderId", "String", "The channel's order id; with the channel it identifies the order."),
    ("customer", "Customer", "Buyer."),
    ("lines", "[OrderLine]", "Ordered lines; never empty."),
    ("shipping", "ShippingCharge", "Shipping charge."),
    ("totals", "OrderTotals", "Channel totals."),
    ("currency", "CurrencyCode", "Currency of every amount in the order."),
    ("shippingAddress", "Address", "Where to ship."),
    ("billingAddress", "Address?", "Billing address, when the channel gives one."),
    ("payment", "PaymentAuthorization", "Channel payment state."),
    ("placedAt", "Date", "When the customer placed the order."),
    ("promisedDeliveryDate", "Date?", "Delivery date promised at checkout."),
    ("serviceLevel", "ServiceLevel", "Paid delivery speed."),
    ("pickupLocation", "String?", "Store id for buy-online-pick-up-in-store; allocation sources only there."),
    ("exchangeOf", "ExchangeLink?", "Set by the returns stage on a replacement order only; the gateway refuses it from outside."),
])
S("Dimensions", "Package dimensions of one unit, in millimetres.", [
    ("lengthMm", "Int", "Length.", {"minimum": 0}),
    ("widthMm", "Int", "Width.", {"minimum": 0}),
    ("heightMm", "Int", "Height.", {"minimum": 0}),
])
S("RegionPrice", "List price of a product in one sales region.", [
    ("region", "String", "Region code, e.g. `EU` or `US`."),
    ("price", "Money", "Price in the region's currency."),
])
S("LocationStock", "Stock of one SKU at one location; available = onHand - reserved - safetyStock.", [
    ("location", "String", "Warehouse or store id."),
    ("onHand", "Int", "Physical units.", {"minimum": 0}),
    ("reserved", "Int", "Units reserved for orders.", {"minimum": 0}),
    ("safetyStock", "Int", "Units never promised.", {"minimum": 0}),
    ("lastSourceSequence", "Int64?", "Last applied WMS/ERP adjustment sequence, to drop stale adjustments."),
])
S("StockObservation", "Availability an inventory refusal reported, which overrides a staler snapshot when allocation re-plans.", [
    ("sku", "String", "SKU."),
    ("location", "String", "Location."),
    ("available", "Int", "Available units at decision time."),
])
S("VelocityEntry", "One recent order of a customer, for velocity rules.", [
    ("orderId", "String", "Order."),
    ("placedAt", "Date", "When it was placed."),
])
S("LineAllocation", "A quantity of one order line sourced from one location.", [
    ("lineId", "String", "Order line."),
    ("sku", "String", "SKU of the line."),
    ("location", "String", "Warehouse or store id."),
    ("quantity", "Int", "Units from this location.", {"minimum": 1}),
])
S("BackorderedLine", "A quantity of a line that could not be sourced.", [
    ("lineId", "String", "Order line."),
    ("sku", "String", "SKU of the line."),
    ("quantity", "Int", "Units not sourced.", {"minimum": 1}),
])
S("LineQuantity", "Units of one order line, as a change names them.", [
    ("lineId", "String", "Order line."),
    ("quantity", "Int", "Units.", {"minimum": 1}),
])
S("ShipmentLine", "Units of an order line in a shipment or return.", [
    ("lineId", "String", "Order line."),
    ("sku", "String", "SKU."),
    ("quantity", "Int", "Units.", {"minimum": 1}),
])
S("ChannelFact", "One thing a channel is told about its order.", [
    ("id", "String", "Identity of the fact: `ship/<shipmentId>`, `cancel`, `refund/<returnId or event id>`."),
    ("action", "ChannelAction", "What to tell."),
    ("shipmentId", "String?", "Shipment, for `ship`."), ("carrier", "String?", "Carrier code, for `ship`."),
    ("trackingNumber", "String?", "Tracking number, for `ship`."),
    ("lines", "[ShipmentLine]", "Lines shipped, for `ship`; empty otherwise."),
    ("amount", "Money?", "Amount refunded, for `refund`."), ("reason", "String?", "Why, for `cancel` and `refund`."),
    ("at", "Date", "When the fact happened in the OMS."),
])
S("ChannelStock", "What stock feed knows of one SKU on one channel.", [
    ("channel", "String", "Channel."),
    ("available", "Int", "Available-to-sell over the channel's locations at the latest level.", {"minimum": 0}),
    ("target", "Int", "What the channel should show now, from the latest level and the channel's rules.", {"minimum": 0}),
    ("advertised", "Int?", "What was last sent; nil before the first update.", {"minimum": 0}),
    ("sentAt", "Date?", "When it was sent."),
])
S("TrackingLocation", "Where a carrier scan happened, as free text because carriers differ.", [
    ("city", "String?", "City."),
    ("region", "String?", "State or region."),
    ("postalCode", "String?", "Postal code."),
    ("country", "String?", "Country as the carrier wrote it (alpha-2 or alpha-3)."),
])
S("TrackingCheckpoint", "One carrier scan event.", [
    ("status", "TrackingStatus", "Normalized status."),
    ("rawStatus", "String", "The carrier's own status value."),
    ("occurredAt", "Date", "Scan time."),
    ("location", "TrackingLocation?", "Scan location."),
    ("message", "String?", "Carrier's message."),
])
S("ReturnLine", "A line the customer wants to return.", [
    ("lineId", "String", "Order line."),
    ("sku", "String", "SKU."),
    ("quantity", "Int", "Units to return.", {"minimum": 1}),
    ("reason", "String", "Customer's reason code."),
    ("exchangeSku", "String?", "For an exchange: the SKU to send instead, as many units (the same product in another size or colour, or another product); absent: money back."),
])
S("ExchangeCredit", "Money a returned unit was paid that pays for its replacement instead of being refunded, and which order's payment it sits on.", [
    ("orderId", "String", "The order whose payment holds the money."),
    ("channel", "String?", "That order's sales channel (its payment provider)."),
    ("authorizationReference", "String?", "That order's payment."),
    ("amount", "Money", "How much of it pays for the replacement."),
])
S("ExchangeLink", "What makes an order a replacement: the return it replaces and the credit that pays for it.", [
    ("orderId", "String", "The order whose units are returned."),
    ("returnId", "String", "The return that asked for the exchange."),
    ("holdUntilReturned", "Bool", "Reserved at authorization: ship only once the return is received (`ShipReplacement`)."),
    ("credits", "[ExchangeCredit]", "What pays for it; refunded back to those orders if the replacement is itself returned for money."),
])
S("ExchangeTerms", "The replacement an authorized exchange sends, and its money.", [
    ("exchangeOrderId", "String", "The linked replacement order (channel order id `<orderId>/exchange/<returnId>`)."),
    ("lines", "[OrderLine]", "The replacement order's lines: list price, tax, and the credit as their discount."),
    ("difference", "Money", "Replacement minus the returned units' worth: above zero charged to `differencePayment`, below zero refunded when the return is received."),
    ("credits", "[ExchangeCredit]", "What the returned units were paid that pays for the replacement, by the payment it sits on."),
    ("differenceRefunds", "[ExchangeCredit]", "The rest of their worth (a cheaper replacement), refunded when the return is received."),
    ("differencePayment", "PaymentAuthorization?", "The customer's authorization of a positive difference: the replacement order's payment."),
    ("reserveAt", "ExchangeReservation", "When the replacement is placed (and so reserved)."),
])
S("ReceivedReturnLine", "A returned line as checked at the warehouse.", [
    ("lineId", "String", "Order line."),
    ("sku", "String", "SKU."),
    ("quantity", "Int", "Units received.", {"minimum": 1}),
    ("disposition", "ReturnDisposition", "Restock or write off."),
    ("location", "String", "Receiving location."),
])
S("PaymentEntry", "A money movement shown in the order view.", [
    ("kind", "PaymentEntryKind", "Authorization, capture, refund or void."),
    ("amount", "Money", "Amount moved."),
    ("at", "Date", "When it happened."),
    ("reference", "String?", "Payment reference."),
    ("note", "String?", "For a failure, its class and the provider's message."),
])
S("ShipmentSummary", "A shipment as shown in the order view.", [
    ("shipmentId", "String", "Shipment id."),
    ("location", "String", "Shipping location."),
    ("carrier", "String", "Carrier."),
    ("trackingNumber", "String", "Tracking number."),
    ("status", "TrackingStatus", "Latest normalized tracking status."),
    ("lines", "[ShipmentLine]", "Contents."),
    ("estimatedDelivery", "Date?", "Carrier's latest estimate."),
])
S("TrackingEntry", "One entry of the order's tracking timeline.", [
    ("shipmentId", "String", "Shipment."),
    ("status", "TrackingStatus", "Normalized status."),
    ("rawStatus", "String", "Carrier value."),
    ("at", "Date", "Event time."),
    ("message", "String?", "Carrier message."),
])
S("ReturnSummary", "A return as shown in the order view.", [
    ("returnId", "String", "Return id."),
    ("status", "ReturnStatus", "Where it stands."),
    ("rma", "String?", "RMA number once authorized."),
    ("lines", "[ShipmentLine]", "Lines being returned."),
    ("refund", "Money?", "Refund requested once received."),
    ("exchangeOrderId", "String?", "For an exchange: the replacement order."),
    ("exchangeOutcome", "ExchangeOutcome?", "`refund` once the exchange ended without a replacement."),
])
S("LineProgress", "Where the units of one order line are, as the order view counts them.", [
    ("lineId", "String", "Order line."),
    ("sku", "String", "SKU."),
    ("ordered", "Int", "Units ordered.", {"minimum": 0}),
    ("allocated", "Int", "Units reserved at a location.", {"minimum": 0}),
    ("shipped", "Int", "Units in a shipment.", {"minimum": 0}),
    ("delivered", "Int", "Units in a delivered shipment.", {"minimum": 0}),
    ("returned", "Int", "Units received back.", {"minimum": 0}),
    ("cancelled", "Int?", "Units cancelled before they shipped (absent: none).", {"minimum": 0}),
])
S("PackedParcel", "One parcel a location packed.", [
    ("weightGrams", "Int", "Weight as weighed at packing.", {"minimum": 1}),
    ("lengthCm", "Int?", "Length.", {"minimum": 1}), ("widthCm", "Int?", "Width.", {"minimum": 1}),
    ("heightCm", "Int?", "Height.", {"minimum": 1}),
])
S("PackedUnits", "What a location packed, as shipping keeps it until the order is read.", [
    ("requestId", "String", "The request packed."), ("location", "String", "Location."), ("lines", "[ShipmentLine]", "Units packed."),
    ("parcels", "[PackedParcel]", "The parcels."), ("carrier", "String?", "The location's carrier, when it shipped itself."),
    ("service", "String?", "Its service."), ("trackingNumber", "String?", "Its tracking number."),
    ("pickup", "Bool?", "Held at the store for the customer."),
])
S("FulfilmentSummary", "One fulfilment request as the order view shows it.", [
    ("requestId", "String", "The request."), ("location", "String", "Location."), ("mode", "FulfilmentMode", "How it is fulfilled."),
    ("lines", "[ShipmentLine]", "Units it covers: asked for, or found once picked or packed."),
    ("status", "FulfilmentStatus", "Where it stands."), ("requestedAt", "Date", "When it was sent."),
    ("updatedAt", "Date", "When it last moved."),
])
S("FulfilmentRecord", "One request to one location, as the fulfilment stage remembers it.", [
    ("requestId", "String", "`<orderId>/<location>`, then `/<n>` for later requests there (units filled from a backorder)."), ("location", "String", "Location."),
    ("mode", "FulfilmentMode", "How the location fulfils it."), ("status", "FulfilmentStatus", "Where it stands."),
    ("lines", "[ShipmentLine]", "Units asked for."), ("picked", "[ShipmentLine]?", "Units found, once picked."),
    ("requestedAt", "Date", "When it was sent."), ("acceptBy", "Date", "The location must accept by then."),
    ("shipBy", "Date", "The location must pack or ship by then."),
    ("alerted", "[String]?", "SLA rules already alerted (`accept`, `ship`)."),
    ("updatedAt", "Date", "Last change."),
])
S("ParcelRecord", "A shipment as the shipping and returns stages remember it.", [
    ("shipmentId", "String", "Shipment id."),
    ("location", "String", "Shipping location."),
    ("lines", "[ShipmentLine]", "Contents."),
    ("deliveredAt", "Date?", "Delivery time, once delivered."),
])
S("ReturnRecord", "A return as the returns stage remembers it.", [
    ("returnId", "String", "Return id."),
    ("status", "ReturnStatus", "Where it stands."),
    ("rma", "String", "RMA number."),
    ("carrier", "String", "Return carrier."),
    ("trackingNumber", "String", "Return parcel tracking number."),
    ("lines", "[ReturnLine]", "Authorized lines."),
    ("expiresAt", "Date", "RMA expiry."),
    ("exchange", "ExchangeTerms?", "For an exchange: its replacement and money."),
    ("exchangeOutcome", "ExchangeOutcome?", "How the exchange ended, once it did."),
    ("replacementPlaced", "Bool?", "The replacement order was sent to intake."),
    ("differencePayment", "PaymentAuthorization?", "A request waiting for its delivery: the authorization of an exchange's difference, decided with it."),
])
S("HistoryEntry", "One event folded into the order view, for the audit trail.", [
    ("eventId", "String", "ce_id of the event."),
    ("eventType", "String", "ce_type of the event."),
    ("at", "Date", "Event time."),
    ("status", "OrderStatus", "Order status after the event."),
    ("note", "String?", "For a change to the order (cancel, address, lines, appeasement, approval, their refusals): who asked and why."),
])

ORDER_KEY = "orderId"
ORDER_LINES_DOC = "Order lines."

EV("CatalogProduct", "oms.catalog.product", 1, "oms.catalog.products", "sku", "sku",
   "A product as PIM/ERP describes it; intake checks SKUs and destinations against it, shipping uses weights.", [
    ("sku", "String", "Seller SKU; the record key."),
    ("title", "String", "Product title."),
    ("weightGrams", "Int", "Shipping weight of one unit.", {"minimum": 0}),
    ("dimensions", "Dimensions", "Package dimensions of one unit."),
    ("launchDate", "Date?", "Not sellable before this time."),
    ("blockedCountries", "[CountryCode]", "Destinations the product may not ship to."),
    ("hazmat", "Bool", "Dangerous goods; restricts carriers."),
    ("prices", "[RegionPrice]", "List prices per region."),
    ("sellable", "Bool?", "False when discontinued or blocked from sale; absent means sellable."),
    ("shipFromStore", "Bool?", "May ship from store locations (absent: no)."),
    ("dropShipSupplier", "String?", "Drop-ship supplier location that ships this SKU; its lines are sourced only there."),
    ("category", "String?", "Product category (e.g. `swimwear`, `furniture`), for rules by category such as return windows."),
    ("preorder", "Bool?", "May be ordered before its launch date (a pre-order: reserved or backordered at once, released to ship on the launch date); absent: no."),
])
EV("InboundChannelOrder", "oms.order.inbound", 1, "oms.orders.inbound", '"\\(channel)/\\(externalOrderId)"', '"\\(channel)/\\(externalOrderId)"',
   "A channel payload exactly as received, before any interpretation; intake decodes it with the adapter named by `format`.", [
    ("channel", "String", "Sales channel."),
    ("format", "ChannelFormat", "Payload format."),
    ("externalOrderId", "String", "Channel order id, part of the key."),
    ("payload", "Data", "The raw body (base64 in JSON)."),
    ("receivedAt", "Date", "When the gateway received it."),
])
EV("OrderPlaced", "oms.order.placed", 1, "oms.orders.placed", ORDER_KEY, ORDER_KEY,
   "A validated order accepted by intake.", [
    ("orderId", "String", "OMS order id, derived from channel and external id."),
    ("channel", "String", "Sales channel."),
    ("externalOrderId", "String", "Channel order id."),
    ("customer", "Customer", "Buyer."),
    ("lines", "[OrderLine]", ORDER_LINES_DOC),
    ("shipping", "ShippingCharge", "Shipping charge."),
    ("totals", "OrderTotals", "Totals."),
    ("currency", "CurrencyCode", "Order currency."),
    ("shippingAddress", "Address", "Ship-to address."),
    ("billingAddress", "Address?", "Billing address."),
    ("payment", "PaymentAuthorization", "Channel payment authorization."),
    ("placedAt", "Date", "When the customer placed it."),
    ("promisedDeliveryDate", "Date?", "Promised delivery date."),
    ("serviceLevel", "ServiceLevel", "Paid delivery speed."),
    ("pickupLocation", "String?", "Store id for buy-online-pick-up-in-store."),
    ("exchangeOf", "ExchangeLink?", "A replacement order: the return it replaces and the credit that pays for it."),
])
EV("OrderRejected", "oms.order.rejected", 1, "oms.orders.rejected", ORDER_KEY, ORDER_KEY,
   "An order intake refused, with every reason found (not just the first).", [
    ("orderId", "String", "OMS order id."),
    ("channel", "String", "Sales channel."),
    ("externalOrderId", "String", "Channel order id."),
    ("reasons", "[Reason]", "Why it was rejected."),
    ("rejectedAt", "Date", "Decision time."),
])
for cls, typ, doc, extra in [
    ("PaymentApproved", "oms.payment.approved", "Payment check passed; allocation may start.", []),
    ("PaymentDeclined", "oms.payment.declined", "Payment check failed; the order stops.", []),
    ("PaymentHeld", "oms.payment.held", "Held for manual fraud review.", []),
    ("PaymentReleased", "oms.payment.released", "An operator released a held order; it proceeds as approved.",
     [("releasedBy", "String", "Operator who released it.")]),
]:
    EV(cls, typ, 1, "oms.payments.checked", ORDER_KEY, ORDER_KEY, doc, [
        ("orderId", "String", "OMS order id."),
        ("amount", "Money", "Order amount checked."),
        ("reasons", "[Reason]", "Rules that fired (empty when none did)."),
    ] + extra + [("decidedAt", "Date", "Decision time.")])

EV("PaymentScreening", "oms.payment.screening", 1, "oms.payments.screening", "customerKey", ORDER_KEY,
   "An order's payment facts and the per-order rules that fired, re-keyed by customer so one writer counts each customer's velocity.", [
    ("orderId", "String", "Order."),
    ("customerKey", "String", "Normalized email, else channel customer id, else `order:<orderId>`; the record key."),
    ("amount", "Money", "Order total."),
    ("placedAt", "Date", "When the customer placed it; velocity windows count by it."),
    ("declineReasons", "[Reason]", "Authorization problems; any of them declines."),
    ("holdReasons", "[Reason]", "Fraud rules that fired on the order alone."),
])
EV("CustomerVelocity", "oms.payment.velocity", 1, "oms.payments.velocity", "customerKey", "customerKey",
   "A customer's recent orders within the velocity window (fraud-velocity's state).", [
    ("customerKey", "String", "Customer key; the record key."),
    ("recent", "[VelocityEntry]", "Orders inside the window, oldest first."),
    ("updatedAt", "Date", "Last change."),
])
EV("HeldOrder", "oms.payment.hold", 1, "oms.payments.holds", ORDER_KEY, ORDER_KEY,
   "An order held for review, kept by payment (its changelog) until an operator releases or cancels it.", [
    ("orderId", "String", "Order."), ("amount", "Money", "Order total."),
    ("reasons", "[Reason]", "Why it is held."), ("heldAt", "Date", "When the hold was decided."),
])
INV = "oms.inventory.commands"
EV("ReserveInventory", "oms.inventory.reserve", 1, INV, "sku", ORDER_KEY,
   "Reserve stock for an order line at a location; succeeds only if available covers it.", [
    ("orderId", "String", "Order."), ("lineId", "String", "Order line."), ("sku", "String", "SKU; the record key."),
    ("location", "String", "Location."), ("quantity", "Int", "Units.", {"minimum": 1}),
])
EV("ReleaseInventory", "oms.inventory.release", 1, INV, "sku", ORDER_KEY,
   "Give back a reservation (cancel, re-plan, partial allocation).", [
    ("orderId", "String", "Order."), ("lineId", "String", "Order line."), ("sku", "String", "SKU; the record key."),
    ("location", "String", "Location."), ("quantity", "Int", "Units.", {"minimum": 1}),
    ("reason", "String", "Why it is released."),
    ("notFound", "Bool?", "The units were not found at the location (a short pick): on hand drops by them too, since the count was wrong."),
])
EV("CommitInventory", "oms.inventory.commit", 1, INV, "sku", ORDER_KEY,
   "Turn a reservation into a shipment: on hand and reserved both decrease.", [
    ("orderId", "String", "Order."), ("shipmentId", "String", "Shipment."), ("lineId", "String", "Order line."),
    ("sku", "String", "SKU; the record key."), ("location", "String", "Location."),
    ("quantity", "Int", "Units.", {"minimum": 1}),
])
EV("AdjustInventory", "oms.inventory.adjust", 1, INV, "sku", "sku",
   "A stock correction from WMS/ERP; the source sequence lets inventory ignore stale or repeated adjustments.", [
    ("sku", "String", "SKU; the record key."), ("location", "String", "Location."),
    ("mode", "AdjustmentMode", "Absolute count or delta."),
    ("quantity", "Int", "New on-hand (absolute) or change (delta)."),
    ("source", "String", "System that sent it."),
    ("sourceSequence", "Int64", "Monotonic sequence number at the source.", {"minimum": 0}),
    ("safetyStock", "Int?", "New safety stock for the location, when the source sets it.", {"minimum": 0}),
])
EV("WaitForStock", "oms.inventory.wait", 1, INV, "sku", ORDER_KEY,
   "An order line waits for `quantity` more units of a SKU (its backorder); 0 stops waiting (cancelled, or filled otherwise). Inventory reserves arriving stock for waiting lines in fill order.", [
    ("orderId", "String", "Order."), ("lineId", "String", "Order line."), ("sku", "String", "SKU; the record key."),
    ("quantity", "Int", "Units still missing; 0 stops waiting.", {"minimum": 0}),
    ("locations", "[String]", "Locations that may fill it, nearest first."),
    ("priority", "Int", "Fill rank: lower first."), ("placedAt", "Date", "When the order was placed."),
])
EV("RestockInventory", "oms.inventory.restock", 1, INV, "sku", ORDER_KEY,
   "Put returned units back on hand.", [
    ("orderId", "String", "Order."), ("returnId", "String", "Return."), ("sku", "String", "SKU; the record key."),
    ("location", "String", "Location."), ("quantity", "Int", "Units.", {"minimum": 1}),
])
EV("InventoryResult", "oms.inventory.result", 1, "oms.inventory.results", ORDER_KEY, ORDER_KEY,
   "The outcome of an inventory command for an order, routed back by order id.", [
    ("orderId", "String", "Order."), ("lineId", "String", "Order line."), ("sku", "String", "SKU."),
    ("location", "String", "Location."), ("quantity", "Int", "Units asked for.", {"minimum": 0}),
    ("outcome", "InventoryOutcome", "What happened."),
    ("available", "Int?", "Available units at decision time (set when refused)."),
    ("commandId", "String", "ce_id of the command, for correlation."),
])
EV("InventoryLevel", "oms.inventory.level", 1, "oms.inventory.levels", "sku", "sku",
   "Stock of one SKU at every location: the inventory changelog. One record per SKU (not per location) because the topic is compacted by SKU and co-partitioned with the SKU-keyed commands.", [
    ("sku", "String", "SKU; the record key."),
    ("locations", "[LocationStock]", "Stock per location, sorted by location id."),
    ("updatedAt", "Date", "Last change."),
    ("waitingHead", "String?", "Key of the first WaitingLine of this SKU in fill order (absent: nobody waits); arriving stock is reserved for the waiting lines before anything else."),
    ("waitingLines", "Int?", "How many order lines wait for this SKU."),
])
EV("WaitingLine", "oms.inventory.waiting_line", 1, "oms.inventory.levels", '"\\(sku)/\\(orderId)/\\(lineId)/:waiting"', ORDER_KEY,
   "Backordered units of one order line waiting for a SKU, a record of its own next to the SKU's level (so the level stays small); the lines of a SKU are linked in fill order from `InventoryLevel.waitingHead`.", [
    ("sku", "String", "SKU."), ("orderId", "String", "Order."), ("lineId", "String", "Order line."),
    ("quantity", "Int", "Units still missing.", {"minimum": 1}),
    ("locations", "[String]", "Locations that may fill it, nearest first (sourcing rules decided them)."),
    ("priority", "Int", "Fill rank: lower first (rule `sourcing.backorderOrder`)."),
    ("placedAt", "Date", "When the order was placed: first placed, first filled within a rank."),
    ("next", "String?", "Key of the next waiting line in fill order (absent: the last)."),
])
EV("InventoryReservation", "oms.inventory.reservation", 1, "oms.inventory.levels", '"\\(sku)/\\(orderId)/\\(lineId)/\\(location)"', ORDER_KEY,
   "One open reservation, kept next to the SKU's level in inventory's changelog so reserve and release are idempotent per order, line and location.", [
    ("sku", "String", "SKU."), ("orderId", "String", "Order."), ("lineId", "String", "Order line."),
    ("location", "String", "Location."), ("quantity", "Int", "Units reserved and not yet shipped or released.", {"minimum": 1}),
    ("reservedAt", "Date", "When it was made."),
])
EV("AllocationState", "oms.allocation.state", 1, "oms.allocation.state", ORDER_KEY, ORDER_KEY,
   "Allocation's progress for one order, restored on partition assignment.", [
    ("orderId", "String", "Order."), ("status", "AllocationStatus", "Progress."),
    ("attempt", "Int", "Planning attempt, bounded by policy.", {"minimum": 0}),
    ("lines", "[ShipmentLine]", "What the order asks for (empty until the order is read)."),
    ("destinationCountry", "CountryCode?", "Ship-to country, for distances and rules."),
    ("destinationPostalCode", "String?", "Ship-to postal code, for zone distances."),
    ("pickupLocation", "String?", "Pick-up store, for buy-online-pick-up-in-store orders."),
    ("planned", "[LineAllocation]", "Reservations asked for and not answered yet."),
    ("reserved", "[LineAllocation]", "Reservations confirmed so far."),
    ("observed", "[StockObservation]", "Availability reported by refusals, used when re-planning."),
    ("backordered", "[BackorderedLine]", "Units not sourced, once decided."),
    ("policy", "BackorderPolicy?", "Policy applied to the missing units, once decided."),
    ("updatedAt", "Date", "Last change."),
    ("cancelledLines", "[ShipmentLine]?", "Units cancelled line by line (OrderLinesCancelled); `lines` no longer asks for them."),
    ("changeIds", "[String]?", "Line cancels applied, so a replayed one is applied once."),
    ("placedAt", "Date?", "When the order was placed, for the backorder fill order."),
    ("serviceLevel", "ServiceLevel?", "Paid delivery speed, for the backorder fill order."),
    ("launchAt", "Date?", "A pre-order: its decision is held back until this launch date (rule `sourcing.preorderPartial`)."),
])
EV("OrderAllocated", "oms.order.allocated", 1, "oms.orders.allocated", ORDER_KEY, ORDER_KEY,
   "Every line is reserved; shipping may start.", [
    ("orderId", "String", "Order."), ("allocations", "[LineAllocation]", "Where each unit comes from."),
    ("decidedAt", "Date", "Decision time."),
])
EV("OrderBackordered", "oms.order.backordered", 1, "oms.orders.allocated", ORDER_KEY, ORDER_KEY,
   "Nothing could be reserved; the order waits for stock (or is cancelled or held, per policy).", [
    ("orderId", "String", "Order."), ("lines", "[BackorderedLine]", "Lines waiting."),
    ("policy", "BackorderPolicy", "What happens to the missing units."),
    ("reasons", "[Reason]", "Why."), ("decidedAt", "Date", "Decision time."),
])
EV("OrderPartiallyAllocated", "oms.order.partially_allocated", 1, "oms.orders.allocated", ORDER_KEY, ORDER_KEY,
   "Some units reserved and shippable; the rest backordered, per policy.", [
    ("orderId", "String", "Order."), ("allocations", "[LineAllocation]", "Reserved units."),
    ("backordered", "[BackorderedLine]", "Units waiting."),
    ("policy", "BackorderPolicy", "What happens to the missing units."), ("decidedAt", "Date", "Decision time."),
])
OC = "oms.orders.commands"
EV("CancelOrder", "oms.order.cancel", 1, OC, ORDER_KEY, ORDER_KEY,
   "Cancel an order; allowed until shipped.", [
    ("orderId", "String", "Order."), ("requestedBy", "String", "Operator, customer or channel."),
    ("reason", "Reason", "Why."), ("requestedAt", "Date", "Request time."),
])
EV("ShipReplacement", "oms.order.ship_replacement", 1, OC, ORDER_KEY, ORDER_KEY,
   "The return an exchange waited for was received: the replacement order (the key) may ship.", [
    ("orderId", "String", "The replacement order."), ("originalOrderId", "String", "The order whose units came back."),
    ("returnId", "String", "The return."), ("requestedAt", "Date", "Request time."),
])
EV("ReleaseHold", "oms.order.release_hold", 1, OC, ORDER_KEY, ORDER_KEY,
   "An operator clears a fraud hold.", [
    ("orderId", "String", "Order."), ("releasedBy", "String", "Operator."), ("note", "String?", "Review note."),
    ("requestedAt", "Date", "Request time."),
])
EV("UpdateShippingAddress", "oms.order.update_address", 1, OC, ORDER_KEY, ORDER_KEY,
   "Change the ship-to address before shipment.", [
    ("orderId", "String", "Order."), ("shippingAddress", "Address", "New address."),
    ("requestedBy", "String", "Who asked."), ("requestedAt", "Date", "Request time."),
])
EV("CancelOrderLines", "oms.order.cancel_lines", 1, OC, ORDER_KEY, ORDER_KEY,
   "Cancel some units of some lines (a line cancel or a quantity decrease); allowed for units not shipped yet.", [
    ("orderId", "String", "Order."), ("changeId", "String", "Id of the change; the same change again is decided once."),
    ("lines", "[LineQuantity]", "Units to cancel per line."), ("requestedBy", "String", "Operator, customer or channel."),
    ("reason", "Reason", "Why."), ("requestedAt", "Date", "Request time."),
])
EV("AppeaseOrder", "oms.order.appease", 1, "oms.returns.requests", ORDER_KEY, ORDER_KEY,
   "Customer service asks to give money back without a return (a goodwill refund): the returns stage checks it against the appeasement limits.", [
    ("orderId", "String", "Order."), ("appeasementId", "String", "Id of the appeasement; the same request again is decided once."),
    ("amount", "Money", "How much to give back, in the order's currency."), ("reason", "Reason", "Why, with a reason code (`late_delivery`, `damaged_packaging`, …)."),
    ("requestedBy", "String", "The agent who asks."), ("role", "String", "The agent's role, whose limit applies (docs/RULES.md, *Appeasements*)."),
    ("lineId", "String?", "The order line it is for, if one."), ("requestedAt", "Date", "Request time."),
    ("storeCredit", "Bool?", "Give it as store credit for the customer's next order instead of money back (absent: money back)."),
])
EV("ApproveReturnRefund", "oms.return.approve_refund", 1, "oms.returns.requests", ORDER_KEY, ORDER_KEY,
   "An operator approves the refund of a return received after its RMA expired.", [
    ("orderId", "String", "Order."), ("returnId", "String", "Return."), ("approvedBy", "String", "Who approves."),
    ("note", "String?", "Why."), ("requestedAt", "Date", "Request time."),
])
EV("ReceiveReturn", "oms.return.receive", 1, "oms.returns.requests", ORDER_KEY, ORDER_KEY,
   "A warehouse reports what it received for a return and what to do with each line.", [
    ("orderId", "String", "Order."), ("returnId", "String", "Return."),
    ("lines", "[ReceivedReturnLine]", "What arrived."), ("receivedAt", "Date", "Receipt time."),
])
CX = "oms.orders.cancellations"
EV("OrderCancelled", "oms.order.cancelled", 1, CX, ORDER_KEY, ORDER_KEY,
   "A cancel was accepted: no shipment existed; reservations are released and the authorization voided.", [
    ("orderId", "String", "Order."), ("requestedBy", "String", "Who asked."), ("reason", "Reason", "Why."),
    ("cancelledAt", "Date", "Decision time."),
])
EV("CancelRejected", "oms.order.cancel_rejected", 1, CX, ORDER_KEY, ORDER_KEY,
   "A cancel came too late (a shipment exists) or for an order already cancelled.", [
    ("orderId", "String", "Order."), ("requestedBy", "String", "Who asked."), ("reasons", "[Reason]", "Why not."),
    ("rejectedAt", "Date", "Decision time."),
])
EV("ShippingAddressChanged", "oms.order.address_changed", 1, CX, ORDER_KEY, ORDER_KEY,
   "An address change was accepted: no label was bought yet; later shipments go to the new address, rated for it.", [
    ("orderId", "String", "Order."), ("shippingAddress", "Address", "The new ship-to address."),
    ("requestedBy", "String", "Who asked."), ("changedAt", "Date", "Decision time."),
])
EV("OrderLinesCancelled", "oms.order.lines_cancelled", 1, CX, ORDER_KEY, ORDER_KEY,
   "A line cancel was accepted for units not shipped: their reservations are released, they are not captured (or, paid at checkout, refunded).", [
    ("orderId", "String", "Order."), ("changeId", "String", "The change's id."),
    ("lines", "[ShipmentLine]", "Units cancelled."), ("amount", "Money", "What the cancelled units were worth (their share of discounts and taxes included)."),
    ("requestedBy", "String", "Who asked."), ("reason", "Reason", "Why."), ("cancelledAt", "Date", "Decision time."),
])
EV("OrderChangeRejected", "oms.order.change_rejected", 1, CX, ORDER_KEY, ORDER_KEY,
   "An address change or line cancel was refused, with every reason (too late: a label was bought or the units shipped; or the change is invalid).", [
    ("orderId", "String", "Order."), ("change", "OrderChangeKind", "Which change."), ("changeId", "String?", "The line cancel's id."),
    ("requestedBy", "String", "Who asked."), ("reasons", "[Reason]", "Why not."), ("rejectedAt", "Date", "Decision time."),
])
EV("ShippingState", "oms.shipping.state", 1, "oms.shipping.state", ORDER_KEY, ORDER_KEY,
   "What shipping knows of one order (its changelog): the order facts it ships by, allocations waiting for the order, shipments made, and whether it was cancelled.", [
    ("orderId", "String", "Order."),
    ("lines", "[OrderLine]", "Order lines (empty until the order is read)."),
    ("totals", "OrderTotals?", "Order totals, for capture amounts."),
    ("destination", "Address?", "Ship-to address."),
    ("serviceLevel", "ServiceLevel?", "Paid delivery speed."),
    ("promisedDeliveryDate", "Date?", "Promised delivery date."),
    ("placedAt", "Date?", "When the order was placed."),
    ("authorizationReference", "String?", "Payment authorization to capture against or void."),
    ("waiting", "[LineAllocation]", "Allocations read before the order itself."),
    ("shipments", "[ParcelRecord]", "Shipments made."),
    ("cancelled", "Bool", "A cancel was accepted."),
    ("updatedAt", "Date", "Last change."),
    ("channel", "String?", "Sales channel, for the payment commands."),
    ("paidAtCheckout", "Bool?", "The order arrived paid (its channel captured the money at checkout): its shipments ask for no capture."),
    ("cancelledLines", "[ShipmentLine]?", "Units cancelled line by line; they are never shipped."),
    ("changeIds", "[String]?", "Line cancels already decided, so a repeated request is decided once."),
    ("awaitingReturn", "Bool?", "A replacement reserved at authorization: its allocations wait in `waiting` for `ShipReplacement`."),
    ("shippingRefunded", "Int64?", "Minor units of the shipping charge refunded for cancelled units (rule `shipping.lineCancelShipping: share`)."),
    ("replacementReleased", "Bool?", "`ShipReplacement` was read (perhaps before the order)."),
    ("packed", "[PackedUnits]?", "Packed answers (FulfilmentPacked) read before the order itself."),
    ("packedRequests", "[String]?", "Fulfilment requests already shipped, so a repeated packed answer ships once."),
])
FR = "oms.fulfilment.requests"
EV("FulfilmentRequested", "oms.fulfilment.requested", 1, FR, ORDER_KEY, ORDER_KEY,
   "A location that confirms its work (rule `locations[].fulfilment: request`) is asked to pick, pack and ship (or hold for pick-up) what allocation reserved there; its WMS, 3PL, store or vendor answers with FulfilmentUpdate.", [
    ("requestId", "String", "`<orderId>/<location>` (`/<n>` for a later one there): the location quotes it back."), ("orderId", "String", "Order."),
    ("location", "String", "Location."), ("mode", "FulfilmentMode", "How it is to be fulfilled."),
    ("lines", "[ShipmentLine]", "Units to pick."), ("serviceLevel", "ServiceLevel", "Paid delivery speed."),
    ("shipTo", "Address?", "Where it goes (absent for pick-up)."),
    ("acceptBy", "Date", "Accept by then, or an SLA alert is raised."), ("shipBy", "Date", "Pack or ship by then."),
    ("requestedAt", "Date", "When it was sent."),
])
EV("FulfilmentWithdrawn", "oms.fulfilment.withdrawn", 1, FR, ORDER_KEY, ORDER_KEY,
   "The location must stop working on a request: the order was cancelled, or the request missed its SLA and was re-sourced.", [
    ("requestId", "String", "The request."), ("orderId", "String", "Order."), ("location", "String", "Location."),
    ("reason", "Reason", "Why."), ("withdrawnAt", "Date", "When."),
])
EV("FulfilmentUpdate", "oms.fulfilment.update", 1, "oms.fulfilment.inbound", ORDER_KEY, ORDER_KEY,
   "A location's answer to a fulfilment request (WMS / 3PL webhook, store app, vendor file).", [
    ("updateId", "String", "The location's id for this update; the same id again is one update."),
    ("orderId", "String", "Order."), ("location", "String", "The location answering."),
    ("kind", "FulfilmentUpdateKind", "What happened."),
    ("requestId", "String?", "The request answered (absent: the latest open request at the location)."),
    ("lines", "[LineQuantity]?", "`picked`: units found per line (a line left out was not found). `packed`/`shipped`: what is in the parcels (absent: everything picked)."),
    ("parcels", "[PackedParcel]?", "`packed`/`shipped`: the parcels."),
    ("carrier", "String?", "`shipped`: the location's carrier."), ("service", "String?", "`shipped`: its service."),
    ("trackingNumber", "String?", "`shipped`: the location's tracking number."),
    ("reason", "Reason?", "`rejected`: why."), ("occurredAt", "Date", "When it happened at the location."),
])
FE = "oms.fulfilment.events"
EV("FulfilmentProgressed", "oms.fulfilment.progressed", 1, FE, ORDER_KEY, ORDER_KEY,
   "A fulfilment request moved on (the view, dashboard and reports follow these).", [
    ("orderId", "String", "Order."), ("requestId", "String", "The request."), ("location", "String", "Location."),
    ("mode", "FulfilmentMode", "How it is fulfilled."), ("status", "FulfilmentStatus", "Its new status."),
    ("requestedAt", "Date", "When it was sent, for time-to-pick."), ("at", "Date", "When it moved."),
    ("lines", "[ShipmentLine]", "Units it covers now: those asked for, or those found once picked or packed."),
])
EV("FulfilmentPacked", "oms.fulfilment.packed", 1, FE, ORDER_KEY, ORDER_KEY,
   "A location packed (or shipped, or holds for pick-up) units of an order: shipping makes the shipment from it, buying the label from the parcels unless the location shipped under its own.", [
    ("orderId", "String", "Order."), ("requestId", "String", "The request."), ("location", "String", "Location."),
    ("lines", "[ShipmentLine]", "Units packed."), ("parcels", "[PackedParcel]", "The parcels (empty for pick-up)."),
    ("carrier", "String?", "The location's carrier, when it shipped itself."), ("service", "String?", "Its service."),
    ("trackingNumber", "String?", "The location's tracking number, when it shipped itself."),
    ("pickup", "Bool?", "Held at the store for the customer: no carrier."),
    ("packedAt", "Date", "When."),
])
EV("FulfilmentShort", "oms.fulfilment.short", 1, FE, ORDER_KEY, ORDER_KEY,
   "Units a location will not ship: allocation releases them there (writing the count down for a short pick) and re-sources them under the same rules, else applies the backorder policy.", [
    ("orderId", "String", "Order."), ("requestId", "String", "The request."), ("location", "String", "Location."),
    ("lines", "[ShipmentLine]", "Units missing."), ("cause", "ShortfallCause", "Why."),
    ("reason", "Reason", "The location's or the SLA's reason."), ("decidedAt", "Date", "When."),
])
EV("FulfilmentState", "oms.fulfilment.state", 1, "oms.fulfilment.state", ORDER_KEY, ORDER_KEY,
   "The fulfilment stage's view of one order (its changelog): the order facts a request needs, allocations read before the order, and every request.", [
    ("orderId", "String", "Order."), ("placed", "Bool", "The order was read."),
    ("serviceLevel", "ServiceLevel?", "Paid delivery speed."), ("shipTo", "Address?", "Ship-to address."),
    ("pickupLocation", "String?", "Pick-up store."), ("waiting", "[LineAllocation]", "Allocations read before the order."),
    ("requests", "[FulfilmentRecord]", "Requests, one per location."), ("cancelled", "Bool", "The order was cancelled."),
    ("updatedAt", "Date", "Last change."),
])
EV("FulfilmentOverdue", "oms.fulfilment.overdue", 1, "oms.alerts", ORDER_KEY, ORDER_KEY,
   "A location missed a fulfilment SLA: it did not accept in time (`accept`) or did not pack or ship by the ship-by time (`ship`).", [
    ("orderId", "String", "Order."), ("requestId", "String", "The request."), ("location", "String", "Location."),
    ("rule", "String", "`accept` or `ship`."), ("due", "Date", "When it was due."),
    ("withdrawAt", "Date", "When the request is withdrawn and re-sourced if nothing comes."), ("detectedAt", "Date", "Detection time."),
])
EV("ShipmentCreated", "oms.shipment.created", 1, "oms.shipments.created", ORDER_KEY, ORDER_KEY,
   "A shipment with carrier, service and label was created for one location.", [
    ("shipmentId", "String", "Shipment id."), ("orderId", "String", "Order."), ("location", "String", "Shipping location."),
    ("carrier", "String", "Carrier code."), ("service", "String", "Carrier service."),
    ("trackingNumber", "String", "Tracking number."), ("labelRef", "String", "Label reference."),
    ("lines", "[ShipmentLine]", "Contents."), ("promisedDate", "Date", "Promised delivery date."),
    ("estimatedDelivery", "Date", "Carrier estimate at creation."),
    ("atRisk", "Bool", "No rate met the promise; the fastest was chosen."),
    ("createdAt", "Date", "Creation time."),
    ("parcels", "[PackedParcel]?", "The parcels as the location packed them (absent: not confirmed by the location; the weight came from the catalog)."),
])
EV("ShipmentIndexEntry", "oms.shipment.indexed", 1, "oms.shipments.index", '"\\(carrier)/\\(trackingNumber)"', ORDER_KEY,
   "Maps a carrier tracking number to its shipment, so tracking can join carrier pushes.", [
    ("carrier", "String", "Carrier code."), ("trackingNumber", "String", "Tracking number."),
    ("shipmentId", "String", "Shipment."), ("orderId", "String", "Order."),
    ("promisedDate", "Date", "Promised delivery date, for delay detection."),
    ("shippedAt", "Date", "When the parcel was handed over; updates far outside a window around it belong to a reuse of the number."),
    ("returnId", "String?", "Set when the parcel is a customer return (the shipment id is then the return id)."),
])
EV("CarrierTrackingUpdate", "oms.tracking.carrier_update", 1, "oms.tracking.inbound", '"\\(carrier)/\\(trackingNumber)"', '"\\(carrier)/\\(trackingNumber)"',
   "A carrier push normalized by a carrier adapter, not yet joined to a shipment.", [
    ("source", "TrackingSource", "Integration that sent it."),
    ("externalEventId", "String?", "The integration's event id, for dedupe."),
    ("carrier", "String", "Carrier code."), ("trackingNumber", "String", "Tracking number."),
    ("status", "TrackingStatus", "Normalized latest status."), ("rawStatus", "String", "Carrier's status value."),
    ("occurredAt", "Date", "Time of the latest checkpoint."),
    ("location", "TrackingLocation?", "Latest location."), ("message", "String?", "Latest message."),
    ("estimatedDelivery", "Date?", "Carrier estimate."),
    ("checkpoints", "[TrackingCheckpoint]", "Scan history, oldest first."),
])
TR = "oms.shipments.tracking"
EV("TrackingUpdated", "oms.tracking.updated", 1, TR, ORDER_KEY, ORDER_KEY,
   "A new, in-order tracking status for a shipment.", [
    ("orderId", "String", "Order."), ("shipmentId", "String", "Shipment."), ("carrier", "String", "Carrier."),
    ("trackingNumber", "String", "Tracking number."), ("status", "TrackingStatus", "Normalized status."),
    ("rawStatus", "String", "Carrier value."), ("occurredAt", "Date", "Event time."),
    ("location", "TrackingLocation?", "Location."), ("message", "String?", "Carrier message."),
    ("estimatedDelivery", "Date?", "Carrier estimate."),
])
EV("ShipmentDelivered", "oms.tracking.delivered", 1, TR, ORDER_KEY, ORDER_KEY,
   "A shipment was delivered.", [
    ("orderId", "String", "Order."), ("shipmentId", "String", "Shipment."), ("carrier", "String", "Carrier."),
    ("trackingNumber", "String", "Tracking number."), ("rawStatus", "String", "Carrier value."),
    ("deliveredAt", "Date", "Delivery time."), ("location", "TrackingLocation?", "Where."),
    ("message", "String?", "Carrier message."),
])
EV("ShipmentDelayed", "oms.tracking.delayed", 1, TR, ORDER_KEY, ORDER_KEY,
   "The carrier's estimate passed the promised date.", [
    ("orderId", "String", "Order."), ("shipmentId", "String", "Shipment."), ("carrier", "String", "Carrier."),
    ("trackingNumber", "String", "Tracking number."), ("status", "TrackingStatus", "Status at detection."),
    ("rawStatus", "String", "Carrier value."), ("promisedDate", "Date", "Promise."),
    ("estimatedDelivery", "Date", "New estimate."), ("detectedAt", "Date", "Detection time."),
])
EV("TrackingState", "oms.tracking.state", 1, "oms.tracking.state", '"\\(carrier)/\\(trackingNumber)"', ORDER_KEY,
   "What tracking knows of one parcel (its changelog): the shipment it belongs to and the newest status, to drop duplicates and stale updates.", [
    ("carrier", "String", "Carrier."), ("trackingNumber", "String", "Tracking number."),
    ("shipmentId", "String", "Shipment (or return) the number belongs to."), ("orderId", "String", "Order."),
    ("status", "TrackingStatus", "Newest status."), ("occurredAt", "Date", "Time of the newest status."),
    ("recentEventIds", "[String]", "The integration's last event ids, for dedupe."),
    ("delivered", "Bool", "Delivery already reported."), ("delayed", "Bool", "Delay already reported."),
])
EV("ReturnRequested", "oms.return.requested", 1, "oms.returns.requests", ORDER_KEY, ORDER_KEY,
   "A customer asks to return delivered items.", [
    ("orderId", "String", "Order."), ("returnId", "String", "Return id."),
    ("lines", "[ReturnLine]", "Items to return."), ("requestedAt", "Date", "Request time."),
    ("differencePayment", "PaymentAuthorization?", "For an exchange whose replacement costs more: the customer's authorization of the difference."),
])
RE = "oms.returns.events"
EV("ReturnAuthorized", "oms.return.authorized", 1, RE, ORDER_KEY, ORDER_KEY,
   "Return accepted: RMA and label issued.", [
    ("orderId", "String", "Order."), ("returnId", "String", "Return."), ("rma", "String", "RMA number."),
    ("labelRef", "String", "Return label reference."), ("carrier", "String", "Return carrier."),
    ("trackingNumber", "String?", "Return tracking number."), ("lines", "[ReturnLine]", "Authorized lines."),
    ("expiresAt", "Date", "RMA expiry."),
    ("exchange", "ExchangeTerms?", "For an exchange: the replacement and its money."),
])
EV("ReturnRejected", "oms.return.rejected", 1, RE, ORDER_KEY, ORDER_KEY,
   "Return refused (window passed, not delivered, already returned).", [
    ("orderId", "String", "Order."), ("returnId", "String", "Return."), ("reasons", "[Reason]", "Why."),
    ("rejectedAt", "Date", "Decision time."),
])
EV("ReturnReceived", "oms.return.received", 1, RE, ORDER_KEY, ORDER_KEY,
   "Returned goods arrived and were inspected.", [
    ("orderId", "String", "Order."), ("returnId", "String", "Return."), ("rma", "String", "RMA number."),
    ("lines", "[ReceivedReturnLine]", "What arrived."), ("receivedAt", "Date", "Receipt time."),
])
EV("ReturnExpired", "oms.return.expired", 1, RE, ORDER_KEY, ORDER_KEY,
   "An authorized return was not received before its RMA expired: the customer is told; a parcel that still comes goes to review.", [
    ("orderId", "String", "Order."), ("returnId", "String", "Return."), ("rma", "String", "RMA number."),
    ("lines", "[ShipmentLine]", "Units the RMA covered."), ("expiresAt", "Date", "When the RMA expired."), ("expiredAt", "Date", "When the expiry was noticed."),
])
EV("OrderAppeased", "oms.order.appeased", 1, RE, ORDER_KEY, ORDER_KEY,
   "An appeasement was granted: its refund is asked of the payment provider (a `RefundPayment` without a return), or it is store credit.", [
    ("orderId", "String", "Order."), ("appeasementId", "String", "Appeasement."), ("amount", "Money", "Given back."),
    ("reason", "Reason", "Why."), ("requestedBy", "String", "Who asked."), ("role", "String", "Their role."),
    ("lineId", "String?", "The order line, if one."), ("decidedAt", "Date", "Decision time."),
    ("storeCredit", "Bool?", "Given as store credit (no refund; the CRM feed counts it per customer) rather than money back."),
])
EV("AppeasementRejected", "oms.order.appeasement_rejected", 1, RE, ORDER_KEY, ORDER_KEY,
   "An appeasement was refused: above the role's or the order's limit, above what is left paid, or for an unknown line or role.", [
    ("orderId", "String", "Order."), ("appeasementId", "String", "Appeasement."), ("reasons", "[Reason]", "Why."),
    ("rejectedAt", "Date", "Decision time."),
])
EV("ExchangeReplacedByRefund", "oms.return.exchange_refund", 1, RE, ORDER_KEY, ORDER_KEY,
   "An exchange ends without a replacement (out of stock, the replacement order was cancelled or rejected, or the RMA expired): the returned units are refunded when received.", [
    ("orderId", "String", "Order."), ("returnId", "String", "Return."), ("exchangeOrderId", "String?", "The replacement order, if it was placed."),
    ("reason", "Reason", "Why."), ("decidedAt", "Date", "Decision time."),
])
EV("ReplacementCancelled", "oms.return.replacement_cancelled", 1, "oms.returns.requests", ORDER_KEY, ORDER_KEY,
   "The returns stage, reading a replacement order's cancel or rejection, tells the original order (keyed by it) that its exchange has no replacement.", [
    ("orderId", "String", "The original order."), ("returnId", "String", "The exchange's return."), ("exchangeOrderId", "String", "The replacement order."),
    ("reason", "Reason", "Why it ended."), ("at", "Date", "When."),
])
EV("ReturnNeedsReview", "oms.return.needs_review", 1, RE, ORDER_KEY, ORDER_KEY,
   "A return arrived after its RMA expired: its units are restocked as usual, but its refund waits for an operator (`POST /v1/orders/{orderId}/returns/{returnId}/approve`).", [
    ("orderId", "String", "Order."), ("returnId", "String", "Return."), ("rma", "String", "RMA number."),
    ("amount", "Money", "The refund it would get."), ("reason", "Reason", "Why it waits."), ("at", "Date", "Decision time."),
])
EV("ReturnsState", "oms.returns.state", 1, "oms.returns.state", ORDER_KEY, ORDER_KEY,
   "What the returns stage knows of one order (its changelog): amounts, shipments and deliveries, and returns so far.", [
    ("orderId", "String", "Order."), ("channel", "String?", "Sales channel, for the return window."),
    ("lines", "[OrderLine]", "Order lines (empty until the order is read)."),
    ("totals", "OrderTotals?", "Order totals, for refund amounts."),
    ("shipments", "[ParcelRecord]", "Shipments and their deliveries."),
    ("returns", "[ReturnRecord]", "Returns authorized so far."),
    ("refunded", "[ShipmentLine]", "Units refunded per line so far."),
    ("updatedAt", "Date", "Last change."),
    ("authorizationReference", "String?", "The order's payment, which refunds go back to."),
    ("appeasements", "[String]?", "Appeasements decided so far (granted or refused), by id."),
    ("appeased", "Money?", "What granted appeasements gave back so far."),
    ("country", "String?", "Ship-to country, for its return window."),
    ("cancelledLines", "[ShipmentLine]?", "Units cancelled before they shipped (OrderLinesCancelled): never paid, so never appeased."),
    ("categories", "[String: String]?", "Product category per line id, from the catalog when the order was read: its return window."),
    ("changeIds", "[String]?", "Line cancels counted, so a replayed one is counted once."),
    ("customer", "Customer?", "The buyer, for a replacement order."),
    ("shippingAddress", "Address?", "The ship-to address (as changed), for a replacement order."),
    ("serviceLevel", "ServiceLevel?", "Paid delivery speed, for a replacement order."),
    ("exchangeOf", "ExchangeLink?", "This order is a replacement: the credits its refunds go back to."),
    ("cancelledBeforeOrder", "Reason?", "A cancel read before the order (perhaps a replacement's): the original order is told once the link is read."),
])
PC = "oms.payments.commands"
EV("CapturePayment", "oms.payment.capture", 1, PC, ORDER_KEY, ORDER_KEY,
   "Capture money for a shipped shipment.", [
    ("orderId", "String", "Order."), ("shipmentId", "String", "Shipment that triggers the capture."),
    ("amount", "Money", "Amount to capture."), ("authorizationReference", "String?", "Authorization to capture against."),
    ("requestedAt", "Date", "Request time."),
    ("channel", "String?", "The order's sales channel: which payment provider the payments connector uses (docs/RULES.md, *Payment providers*)."),
    ("reauthorize", "Bool?", "Re-authorize the payment if its authorization has expired: set when an operator asks (`POST /v1/ops/payments/{commandId}/reauthorize`); the channels in `payments.reauthorize` always are."),
])
EV("RefundPayment", "oms.payment.refund", 1, PC, ORDER_KEY, ORDER_KEY,
   "Refund money for a received return (or a goodwill refund).", [
    ("orderId", "String", "Order."), ("returnId", "String?", "Return, if any."),
    ("amount", "Money", "Amount to refund."), ("reason", "Reason", "Why."), ("requestedAt", "Date", "Request time."),
    ("channel", "String?", "The order's sales channel: which payment provider refunds."),
    ("authorizationReference", "String?", "The payment the refund goes back to."),
])
EV("VoidPayment", "oms.payment.void", 1, PC, ORDER_KEY, ORDER_KEY,
   "Void an uncaptured authorization after cancellation.", [
    ("orderId", "String", "Order."), ("authorizationReference", "String?", "Authorization to void."),
    ("reason", "Reason", "Why."), ("requestedAt", "Date", "Request time."),
    ("channel", "String?", "The order's sales channel: which payment provider voids."),
])
PO = "oms.payments.outcomes"
E("PaymentFailure", "Why a payment provider did not move the money.", [
    ("declined", "The issuer or the provider declined (card declined, insufficient funds, fraud)."),
    ("authorization_expired", "The authorization expired or was cancelled before capture: re-authorize or put the order on hold."),
    ("invalid_request", "The provider refused the request as malformed or impossible (amount above the authorization, unknown payment)."),
    ("provider_unavailable", "The provider kept failing or stayed unreachable until the retry ceiling."),
    ("outcome_unknown", "The provider's answer was lost and it could not tell whether the money moved: an operator checks."),
])
EV("PaymentCaptured", "oms.payment.captured", 1, PO, ORDER_KEY, ORDER_KEY,
   "The payment provider captured money for a shipment: the payments connector's outcome of one CapturePayment.", [
    ("orderId", "String", "Order."), ("commandId", "String", "The CapturePayment it executed."),
    ("shipmentId", "String", "Shipment that triggered it."), ("amount", "Money", "Amount captured."),
    ("provider", "String", "Provider name from configuration, e.g. `stripe`."),
    ("providerReference", "String?", "The provider's id for the capture."), ("capturedAt", "Date", "When it was settled."),
    ("reauthorization", "String?", "The new payment the money was captured on, when the order's authorization had expired and was re-authorized (docs/OPERATIONS.md, *Payments*)."),
])
EV("PaymentCaptureFailed", "oms.payment.capture_failed", 1, PO, ORDER_KEY, ORDER_KEY,
   "The payment provider did not capture: declined, authorization expired, refused, or unreachable until the ceiling.", [
    ("orderId", "String", "Order."), ("commandId", "String", "The CapturePayment."),
    ("shipmentId", "String", "Shipment that triggered it."), ("amount", "Money", "Amount asked for."),
    ("provider", "String", "Provider name."), ("failure", "PaymentFailure", "Why."),
    ("message", "String", "The provider's own message."), ("failedAt", "Date", "When it was settled."),
])
EV("PaymentRefunded", "oms.payment.refunded", 1, PO, ORDER_KEY, ORDER_KEY,
   "The payment provider refunded money: the outcome of one RefundPayment.", [
    ("orderId", "String", "Order."), ("commandId", "String", "The RefundPayment it executed."),
    ("returnId", "String?", "Return, if any."), ("amount", "Money", "Amount refunded."),
    ("provider", "String", "Provider name."), ("providerReference", "String?", "The provider's refund id."),
    ("refundedAt", "Date", "When it was settled."),
])
EV("PaymentRefundFailed", "oms.payment.refund_failed", 1, PO, ORDER_KEY, ORDER_KEY,
   "The payment provider did not refund; an alert and a dead letter go with it so it is never lost (`oms dlq replay` re-drives it).", [
    ("orderId", "String", "Order."), ("commandId", "String", "The RefundPayment."),
    ("returnId", "String?", "Return, if any."), ("amount", "Money", "Amount asked for."),
    ("provider", "String", "Provider name."), ("failure", "PaymentFailure", "Why."),
    ("message", "String", "The provider's own message."), ("failedAt", "Date", "When it was settled."),
])
EV("PaymentVoided", "oms.payment.voided", 1, PO, ORDER_KEY, ORDER_KEY,
   "The payment provider released an uncaptured authorization: the outcome of one VoidPayment.", [
    ("orderId", "String", "Order."), ("commandId", "String", "The VoidPayment it executed."),
    ("provider", "String", "Provider name."), ("providerReference", "String?", "The provider's id for the cancelled payment."),
    ("voidedAt", "Date", "When it was settled."),
])
EV("PaymentVoidFailed", "oms.payment.void_failed", 1, PO, ORDER_KEY, ORDER_KEY,
   "The payment provider did not void the authorization (it lapses on its own, but the customer's funds stay held until then).", [
    ("orderId", "String", "Order."), ("commandId", "String", "The VoidPayment."),
    ("provider", "String", "Provider name."), ("failure", "PaymentFailure", "Why."),
    ("message", "String", "The provider's own message."), ("failedAt", "Date", "When it was settled."),
])
E("InvoiceKind", "An invoice or a credit note that corrects one.", [
    ("invoice", "A commercial invoice (UBL InvoiceTypeCode 380)."),
    ("credit_note", "A credit note (UBL CreditNoteTypeCode 381) for a refund, a return or an appeasement."),
])
E("TaxRounding", "Where tax is rounded to the currency's minor unit.", [
    ("per_line", "Each line's tax is rounded; the invoice's tax is their sum."),
    ("per_invoice", "Tax is computed on each rate's taxable total and rounded once per rate."),
])
S("InvoiceParty", "The seller or the buyer on an invoice.", [
    ("name", "String", "Legal or person name."),
    ("taxId", "String?", "VAT, GST or sales tax registration (with its country prefix in the EU, e.g. `DE123456789`)."),
    ("address", "Address?", "Postal address."),
    ("email", "String?", "Where the document goes."),
])
S("InvoiceLine", "One line of an invoice: net amounts, the tax category and rate it falls under.", [
    ("lineId", "String", "The order line (or `shipping`)."), ("sku", "String?", "Seller SKU; nil for shipping."),
    ("description", "String", "What was sold."),
    ("quantity", "Int", "Units.", {"minimum": 1}),
    ("unitPrice", "Money", "Net price of one unit, after discount, before tax."),
    ("netAmount", "Money", "Net line amount (quantity × unit price, rounded)."),
    ("taxCategory", "String", "UNCL5305 code: S standard, Z zero, E exempt, AE reverse charge, K intra-EU, G export, O outside scope."),
    ("taxRateBasisPoints", "Int", "Rate in hundredths of a percent: 1900 is 19 %.", {"minimum": 0}),
    ("taxAmount", "Money", "Tax of the line (its rounded share when tax is rounded per invoice)."),
])
S("TaxSubtotal", "Tax of one category and rate on an invoice.", [
    ("taxCategory", "String", "UNCL5305 code."),
    ("taxRateBasisPoints", "Int", "Rate in hundredths of a percent.", {"minimum": 0}),
    ("taxableAmount", "Money", "Net amount taxed at this rate."),
    ("taxAmount", "Money", "Tax at this rate."),
    ("exemptionReason", "String?", "Why no tax is charged (reverse charge, export), for categories other than S."),
])
S("Invoice", "An invoice or credit note as issued: numbered in its series, with parties, lines, tax per rate and totals.", [
    ("invoiceId", "String", "Id: `<legal entity>/<series>/<sequence>`."),
    ("number", "String", "The printed number, e.g. `DE-2026-000042`: the series prefix and its sequence, gap-free within the series."),
    ("kind", "InvoiceKind", "Invoice or credit note."),
    ("legalEntity", "String", "The brand's selling entity."),
    ("series", "String", "Numbering series within the entity."),
    ("sequence", "Int64", "Position in the series, from 1, without gaps (0 while the document waits for its number in an InvoiceRequested).", {"minimum": 0}),
    ("issuedAt", "Date", "Issue date and time."),
    ("orderId", "String", "Order."),
    ("cause", "String", "What it was issued for, e.g. `shipment:<id>` or `refund:<command id>`: one document per cause."),
    ("correctedInvoice", "String?", "For a credit note, the number of the invoice it corrects."),
    ("seller", "InvoiceParty", "The legal entity."),
    ("buyer", "InvoiceParty", "The customer."),
    ("currency", "CurrencyCode", "The order's currency: every amount is in it."),
    ("pricesIncludeTax", "Bool", "The order's prices included tax (EU, UK, AU, JP style)."),
    ("rounding", "TaxRounding", "Where tax was rounded."),
    ("reverseCharge", "Bool", "The buyer accounts for the VAT (EU B2B across borders)."),
    ("lines", "[InvoiceLine]", "Lines."),
    ("taxes", "[TaxSubtotal]", "Tax per category and rate."),
    ("netTotal", "Money", "Sum of net line amounts."), ("taxTotal", "Money", "Sum of tax."),
    ("grossTotal", "Money", "Net plus tax: what the customer pays (or is refunded)."),
    ("bookCurrency", "CurrencyCode?", "The entity's book currency where it differs from the order's."),
    ("exchangeRate", "String?", "Book-currency units per order-currency unit, as a decimal string, on the issue date."),
    ("note", "String?", "Free text printed on the document."),
])
S("InvoiceAssignment", "A number an invoicing series gave to a cause.", [
    ("cause", "String", "What the document was issued for."),
    ("sequence", "Int64", "Its position in the series.", {"minimum": 1}),
    ("number", "String", "The printed number."),
])
IR = "oms.invoices.requests"
EV("InvoiceRequested", "oms.invoice.requested", 1, IR, "legalEntity", ORDER_KEY,
   "A complete invoice, but for its number, handed from the order-keyed `invoicing` stage to `invoice-numbering`, the one writer of the entity's series.", [
    ("legalEntity", "String", "The selling entity; the record key."), ("orderId", "String", "Order."),
    ("document", "Invoice", "The document with `sequence` 0 and empty `number` and `invoiceId`."),
    ("requestedAt", "Date", "When the payment that made it due was settled."),
])
EV("CreditNoteRequested", "oms.invoice.credit_requested", 1, IR, "legalEntity", ORDER_KEY,
   "Money went back to the customer: `invoice-numbering` credits the order's invoices for it.", [
    ("legalEntity", "String", "The selling entity; the record key."), ("orderId", "String", "Order."),
    ("cause", "String", "What it is for, e.g. `refund:<command id>`: one set of credit notes per cause."),
    ("amount", "Money", "Gross amount to credit: split over the order's invoices, oldest first, and within each over its tax rates."),
    ("requestedAt", "Date", "When the refund was settled."),
])
EV("InvoicingState", "oms.invoicing.state", 1, "oms.invoicing.state", ORDER_KEY, ORDER_KEY,
   "What the `invoicing` stage knows of one order (its changelog): the order's facts an invoice needs and the shipments invoiced.", [
    ("orderId", "String", "Order."), ("channel", "String?", "Sales channel (empty until the order is read)."),
    ("lines", "[OrderLine]", "Order lines."),
    ("totals", "OrderTotals?", "Order totals: with the lines, what each shipment's units were worth (they were captured for it)."),
    ("shipTo", "Address?", "Ship-to address."), ("billTo", "Address?", "Billing address."),
    ("buyerEmail", "String?", "The customer's address for the document."),
    ("shipments", "[ParcelRecord]", "Shipments made."),
    ("waiting", "[String]", "Captured shipments whose shipment or order was not read yet."),
    ("invoiced", "[String]", "Shipments invoiced."),
    ("updatedAt", "Date", "Last change."),
])
EV("InvoiceSeriesState", "oms.invoice.series", 1, "oms.invoicing.series", '"\\(legalEntity)/\\(series)"', '"\\(legalEntity)/\\(series)"',
   "One numbering series of one entity (`invoice-numbering`'s changelog): the last number given and the recent causes, for replays.", [
    ("legalEntity", "String", "Entity."), ("series", "String", "Series."), ("prefix", "String", "Printed prefix."),
    ("last", "Int64", "The last sequence given out; 0 before the first.", {"minimum": 0}),
    ("recent", "[InvoiceAssignment]", "The last 50 assignments, oldest first: a replay after a crash that kept this record but not the order's (written after it) finds its numbers here."),
])
EV("InvoicedOrder", "oms.invoice.order", 1, "oms.invoicing.series", '"\\(legalEntity)/order/\\(orderId)"', ORDER_KEY,
   "The documents an entity issued for one order (`invoice-numbering`'s changelog), which credit notes are written against.", [
    ("legalEntity", "String", "Entity."), ("orderId", "String", "Order."),
    ("documents", "[Invoice]", "Invoices and credit notes, in the order issued."),
    ("updatedAt", "Date", "Last change."),
])
EV("InvoiceIssued", "oms.invoice.issued", 1, "oms.invoices", '"\\(invoice.invoiceId)"', ORDER_KEY,
   "An invoice or credit note was issued (compacted, keyed by invoice id: kept for as long as the law asks; the gateway serves it as HTML and UBL).", [
    ("orderId", "String", "Order."), ("invoice", "Invoice", "The document."),
])
EV("OrderView", "oms.order.view", 1, "oms.orders.state", ORDER_KEY, ORDER_KEY,
   "Everything known about an order, folded from all its events; the order API serves it.", [
    ("orderId", "String", "Order."), ("channel", "String", "Sales channel."), ("externalOrderId", "String", "Channel order id."),
    ("status", "OrderStatus", "Current status."), ("currency", "CurrencyCode", "Order currency."),
    ("totals", "OrderTotals?", "Totals, once placed."), ("lines", "[OrderLine]", ORDER_LINES_DOC),
    ("payments", "[PaymentEntry]", "Money movements."), ("shipments", "[ShipmentSummary]", "Shipments."),
    ("tracking", "[TrackingEntry]", "Tracking timeline."), ("returns", "[ReturnSummary]", "Returns."),
    ("history", "[HistoryEntry]", "Every folded event."),
    ("lineProgress", "[LineProgress]", "Units per line allocated, shipped, delivered and returned."),
    ("customerEmail", "String?", "Where notifications go."),
    ("customerPhone", "String?", "The ship-to phone, where text messages go."),
    ("promisedDeliveryDate", "Date?", "Delivery date promised at checkout."),
    ("statusSince", "Date", "When the order entered its current status (SLA watch counts from it)."),
    ("deliveredAt", "Date?", "When the last shipment was delivered, once every one is."),
    ("notificationsSent", "[String]", "Notifications already emitted (kind and subject), so each goes once."),
    ("updatedAt", "Date", "Last change."),
    ("storeCredit", "Money?", "Store credit granted on this order by appeasements; nil when none."),
    ("paymentHold", "Reason?", "Set while a shipment's capture has failed for good (an expired authorization not re-authorized, a declined card): the order waits for an operator (`GET /v1/ops/payments`); cleared when that shipment is captured."),
    ("replacesOrderId", "String?", "For an exchange's replacement order: the order whose returned units it replaces."),
    ("fulfilment", "[FulfilmentSummary]?", "Requests to locations that confirm their work, as they stand."),
])
EV("Notification", "oms.notification", 1, "oms.notifications", ORDER_KEY, ORDER_KEY,
   "A message to send to the customer; the email connector delivers it.", [
    ("orderId", "String", "Order."), ("kind", "NotificationKind", "Which message."),
    ("recipientEmail", "String?", "Recipient, if known."), ("data", "[String: String]", "Template values."),
    ("recipientPhone", "String?", "The customer's phone, if known: the SMS connector texts the kinds it has a template for."),
    ("createdAt", "Date", "Creation time."),
])
EV("ChannelUpdate", "oms.channel.update", 1, "oms.channels.commands", ORDER_KEY, ORDER_KEY,
   "A command to tell the channel that sent an order what became of it; the channel connector performs it.", [
    ("orderId", "String", "Order."), ("channel", "String", "Channel the order came from."),
    ("externalOrderId", "String", "The channel's order id."), ("fact", "ChannelFact", "What to tell."),
])
EV("ChannelSyncState", "oms.channel.sync_state", 1, "oms.channels.state", ORDER_KEY, ORDER_KEY,
   "Channel sync's view of one order (its changelog): where it came from, so later facts can be told to it.", [
    ("orderId", "String", "Order."), ("channel", "String?", "Channel; nil until the placed order is read."),
    ("externalOrderId", "String?", "The channel's order id; nil until the placed order is read, and for an exchange's replacement order (the channel never saw it: nothing is told)."),
    ("told", "[String]", "Facts already turned into commands, by ``ChannelFact/id``."),
    ("pending", "[ChannelFact]", "Facts read before the placed order (topics are read side by side), told once it is read."),
])
EV("StockUpdate", "oms.stock.update", 1, "oms.channels.stock", "sku", "sku",
   "A command to set what a channel shows as available for one SKU; the stock connector performs it.", [
    ("sku", "String", "SKU; the record key."), ("channel", "String", "Channel."),
    ("quantity", "Int", "Units to show: available-to-sell after the channel's share, buffer and cap.", {"minimum": 0}),
    ("availableToSell", "Int", "Available-to-sell over the channel's locations when decided.", {"minimum": 0}),
    ("reason", "String", "`change` or `resync`."), ("decidedAt", "Date", "When stock feed decided it."),
])
EV("StockResync", "oms.stock.resync", 1, "oms.stockfeed.requests", "sku", "sku",
   "An operator's request to send one SKU's stock to its channels again, whatever was sent (`oms channels resync`).", [
    ("sku", "String", "SKU; the record key."), ("channel", "String?", "Only this channel; nil for every one."),
    ("requestedAt", "Date", "Request time."),
])
EV("StockFeedState", "oms.stockfeed.state", 1, "oms.stockfeed.state", "sku", "sku",
   "Stock feed's view of one SKU (its changelog): per channel what it should show and what was sent.", [
    ("sku", "String", "SKU; the record key."), ("channels", "[ChannelStock]", "Per channel, sorted by channel."),
    ("updatedAt", "Date", "Last change."),
])
S("CustomerReturn", "A return as a customer's timeline shows it.", [
    ("returnId", "String", "Return id."),
    ("status", "ReturnStatus", "Where it stands."),
    ("refund", "Money?", "Refund requested once received."),
])
S("CustomerOrder", "One order in a customer's timeline, as its order view last showed it.", [
    ("orderId", "String", "Order."), ("channel", "String", "Sales channel."), ("externalOrderId", "String", "Channel order id."),
    ("status", "OrderStatus", "Status when last seen."), ("currency", "CurrencyCode", "Order currency."),
    ("total", "Money?", "Order total, once placed."),
    ("refunded", "Money?", "Refunds requested so far; nil when none."),
    ("storeCredit", "Money?", "Store credit granted on it; nil when none."),
    ("returns", "[CustomerReturn]", "Its returns."),
    ("notifications", "[String]", "Messages sent about it, as `kind` or `kind/subject`, in order."),
    ("placedAt", "Date", "When the order view began (the order's first event)."),
    ("updatedAt", "Date", "When its view last changed."),
])
EV("CustomerOrderFact", "oms.customer.order_fact", 1, "oms.customers.facts", "customerId", "customerId",
   "An order of a customer as its view now stands, re-keyed by customer so the timeline of each customer is folded in one place.", [
    ("customerId", "String", "The customer (``CustomerKeys``): a name-based UUID of the normalized e-mail address, so no address is in a key."),
    ("email", "String", "The normalized (trimmed, lower-case) e-mail address."),
    ("order", "CustomerOrder", "The order."),
])
S("CustomerTotals", "What a set of a customer's orders adds up to.", [
    ("orders", "Int", "Orders.", {"minimum": 0}),
    ("returns", "Int", "Returns of them.", {"minimum": 0}),
    ("notifications", "Int", "Messages sent about them.", {"minimum": 0}),
    ("value", "[Money]", "Per currency (sorted by code): totals of the orders neither rejected, declined nor cancelled, less their refunds."),
    ("storeCredit", "[Money]?", "Store credit granted on them, per currency (sorted by code); nil when none."),
])
EV("CustomerTimeline", "oms.customer.timeline", 1, "oms.customers.state", "customerId", "customerId",
   "A customer's timeline for the brand's CRM (compacted, keyed by customer): orders, returns, notifications and lifetime value per currency.", [
    ("customerId", "String", "The customer; the record key."), ("email", "String", "The normalized e-mail address."),
    ("orders", "[CustomerOrder]", "The most recent orders, newest placed first; at most ``CustomerTimelines/keptOrders``."),
    ("lifetime", "CustomerTotals", "Every order seen: counts and lifetime value per currency."),
    ("older", "CustomerTotals", "Orders no longer listed, as last seen (later changes to them are not counted)."),
    ("firstOrderAt", "Date", "First order placed."), ("lastOrderAt", "Date", "Latest order placed."),
    ("updatedAt", "Date", "Last change."),
])
E("ERPEntity", "Which ERP feed file a row belongs to.", [
    ("orders", "A placed order."),
    ("shipments", "A shipment handed to a carrier."),
    ("returns", "A return decision or receipt."),
    ("refunds", "A refund requested from the payment provider."),
])
EV("ERPRecord", "oms.erp.record", 1, "oms.erp.feed", ORDER_KEY, ORDER_KEY,
   "One row of the ERP feed (the outbound topic a brand's ERP reads; `oms erp export` writes the daily files from it): its entity, its business id and its documented columns.", [
    ("entity", "ERPEntity", "The file it belongs to."),
    ("id", "String", "Its business id, unique within the entity: order id, shipment id, return id and status, refund id."),
    ("orderId", "String", "Order; the record key."),
    ("at", "Date", "When it happened (the business time that decides its day, UTC)."),
    ("columns", "[String: String]", "The row, by column name (docs/OPERATIONS.md, *ERP feed*, lists each entity's columns); amounts are decimal strings in the currency's major unit."),
])
EV("OutboundDelivery", "oms.outbound.delivery", 1, "oms.outbound.deliveries", '"\\(connector)/\\(commandId)"', ORDER_KEY,
   "Where one outbound command stands with its external system: the connector's ledger (compacted, in the command's partition) and its results.", [
    ("connector", "String", "Connector name."), ("commandId", "String", "Id of the command event."),
    ("commandType", "String", "Type of the command event."), ("orderId", "String", "The command's key: its order (for a stock command, its SKU)."),
    ("idempotencyKey", "String", "Key sent with every call for this command."),
    ("state", "DeliveryState", "Where it stands."), ("attempts", "Int", "Calls made so far.", {"minimum": 0}),
    ("reference", "String?", "The system's id for the effect, when it gave one."),
    ("status", "Int?", "The system's last status code (HTTP or SMTP)."), ("reason", "String?", "The system's last message."),
    ("sourceOffset", "Int64", "Offset of the command record this state is for.", {"minimum": 0}),
    ("updatedAt", "Date", "When it changed."),
    ("firstAttemptAt", "Date?", "When the first attempt was made (webhook deliveries: their retry window starts here)."),
    ("nextAttemptAt", "Date?", "When the next attempt is due (state `retrying`)."),
    ("sourcePartition", "Int32?", "Partition of the command record (the ledger entry's own): with `sourceOffset`, where an operator finds the command to run it again.", {"minimum": 0}),
    ("checkpoint", "String?", "What the endpoint noted at its point of no return (an attempt in flight, or unknown): what it saw before the call, against which a lost answer is reconciled (e.g. the Shopify captures that existed)."),
])
EV("WebhookSubscription", "oms.webhook.subscription", 1, "oms.webhooks.subscriptions", "subscriptionId", "subscriptionId",
   "A brand system's subscription to events (compacted, keyed by id): where to POST them and which types; its signing secret is derived from `webhooks.signing.key`, never stored.", [
    ("subscriptionId", "String", "Id, `wh_` and 16 hex digits; the record key."),
    ("url", "String", "Where deliveries are POSTed (http or https)."),
    ("eventTypes", "[String]", "Event types delivered (``WebhookEvents/subscribable``), or `*` for all of them."),
    ("description", "String?", "The operator's note."),
    ("status", "WebhookStatus", "Active or disabled."),
    ("reason", "String?", "Why it was disabled."),
    ("createdAt", "Date", "When it was added; events before it are not delivered."),
    ("updatedAt", "Date", "Last change."),
])
EV("ConnectorAlert", "oms.outbound.alert", 1, "oms.alerts", ORDER_KEY, ORDER_KEY,
   "An outbound command needs an operator: rejected, retries exhausted, or outcome unknown.", [
    ("connector", "String", "Connector name."), ("commandId", "String", "Command event id."),
    ("orderId", "String", "The command's key: its order (for a stock command, its SKU)."),
    ("state", "DeliveryState", "Why."), ("reason", "String", "The system's message or the runtime's."),
    ("raisedAt", "Date", "When."),
])
EV("SLAAlert", "oms.sla.alert", 1, "oms.alerts", ORDER_KEY, ORDER_KEY,
   "An order has been in a state longer than its SLA.", [
    ("orderId", "String", "Order."), ("rule", "String", "SLA rule, e.g. `approved_not_allocated`."),
    ("status", "OrderStatus", "State the order is stuck in."), ("since", "Date", "When it entered it."),
    ("thresholdSeconds", "Int", "The SLA.", {"minimum": 0}), ("severity", "AlertSeverity", "Urgency."),
    ("detectedAt", "Date", "Detection time."),
])
EV("SLARecovered", "oms.sla.recovered", 1, "oms.alerts", ORDER_KEY, ORDER_KEY,
   "An order that breached an SLA left the state it was stuck in.", [
    ("orderId", "String", "Order."), ("rule", "String", "SLA rule."), ("status", "OrderStatus", "State it was stuck in."),
    ("since", "Date", "When it entered it."), ("recoveredAt", "Date", "When it left it."),
])
EV("SLAWatchState", "oms.sla.state", 1, "oms.sla.state", ORDER_KEY, ORDER_KEY,
   "SLA watch's view of one open order (its changelog): the state it is in and the alerts raised for it.", [
    ("orderId", "String", "Order."), ("status", "OrderStatus", "Current status."), ("since", "Date", "When it entered it."),
    ("promisedDeliveryDate", "Date?", "Promise, for ship-by rules."), ("alerted", "[String]", "Rules alerted for this status."),
])
EV("ReportBucket", "oms.report.bucket", 1, "oms.reports", '"\\(report)/\\(bucket)"', '"\\(report)/\\(bucket)"',
   "One aggregate bucket of a report (e.g. revenue per channel per hour).", [
    ("report", "String", "Report name."), ("bucket", "String", "Bucket, e.g. `2026-03-01T12/shopify`."),
    ("values", "[String: Int64]", "Counters and sums (money in minor units)."), ("updatedAt", "Date", "Last change."),
])
EV("IdempotencyRecord", "oms.idempotency.key", 1, "oms.idempotency", '"\\(stage)/\\(key)"', '"\\(stage)/\\(key)"',
   "Marks an input as processed by a stage, so a replay is skipped.", [
    ("stage", "String", "Stage name."), ("key", "String", "Idempotency key of the input."),
    ("eventId", "String", "ce_id of the processed input."), ("processedAt", "Date", "Processing time."),
    ("expiresAt", "Date", "After this a tombstone removes the key."),
])
EV("DeadLetter", "oms.deadletter", 1, "oms.deadletter", "originalKeyText", '"\\(originalTopic)/\\(partition)/\\(offset)"',
   "A record a stage could not process, kept byte for byte for operators.", [
    ("originalTopic", "String", "Topic it came from."), ("partition", "Int32", "Its partition.", {"minimum": 0}),
    ("offset", "Int64", "Its offset.", {"minimum": 0}), ("stage", "String", "Stage that failed."),
    ("error", "String", "ContractError or handler error description."),
    ("attempts", "Int", "Attempts made.", {"minimum": 1}), ("failedAt", "Date", "Last failure time."),
    ("rawKey", "Data?", "Original key bytes (base64)."), ("rawValue", "Data?", "Original value bytes (base64)."),
])

DAY_MS = 86_400_000
# name, key, cleanup, retention_ms, co_partition_group, writers, readers
TOPICS = [
    ("oms.catalog.products", "sku", "compact", None, None, ["pim-connector", "oms catalog import"], ["intake", "allocation", "shipping", "returns"]),
    ("oms.orders.inbound", "channel/externalOrderId", "delete", 7 * DAY_MS, None, ["gateway", "marketplaces", "returns"], ["intake"]),
    ("oms.orders.placed", "orderId", "delete", None, "order", ["intake"], ["payment", "allocation", "fulfilment", "shipping", "returns", "view", "report", "channel-sync", "erp-feed", "invoicing"]),
    ("oms.orders.rejected", "orderId", "delete", None, "order", ["intake"], ["view", "report"]),
    ("oms.payments.checked", "orderId", "delete", None, "order", ["fraud-velocity", "payment"], ["payment", "allocation", "view"]),
    ("oms.payments.screening", "customerKey", "delete", None, "customer", ["payment"], ["fraud-velocity"]),
    ("oms.payments.velocity", "customerKey", "compact", None, "customer", ["fraud-velocity"], ["fraud-velocity"]),
    ("oms.payments.holds", "orderId", "compact", None, "order", ["payment"], ["payment"]),
    ("oms.inventory.commands", "sku", "delete", None, "inventory", ["allocation", "shipping", "returns", "ops"], ["inventory"]),
    ("oms.inventory.results", "orderId", "delete", None, "order", ["inventory"], ["allocation", "report"]),
    ("oms.inventory.levels", "sku[/orderId/lineId/location or :waiting]", "compact", None, "inventory", ["inventory"], ["inventory", "allocation", "returns", "gateway", "stock-feed"]),
    ("oms.allocation.state", "orderId", "compact", None, "order", ["allocation"], ["allocation"]),
    ("oms.orders.allocated", "orderId", "delete", None, "order", ["allocation"], ["fulfilment", "shipping", "returns", "view", "report"]),
    ("oms.orders.commands", "orderId", "delete", None, "order", ["gateway", "ops", "intake", "returns"], ["payment", "shipping"]),
    ("oms.orders.cancellations", "orderId", "delete", None, "order", ["shipping"], ["payment", "allocation", "fulfilment", "returns", "view", "report", "channel-sync", "invoicing"]),
    ("oms.shipping.state", "orderId", "compact", None, "order", ["shipping"], ["shipping"]),
    ("oms.fulfilment.requests", "orderId", "delete", None, "order", ["fulfilment"], ["WMS, 3PLs, stores, vendors"]),
    ("oms.fulfilment.inbound", "orderId", "delete", None, "order", ["gateway", "locations"], ["fulfilment"]),
    ("oms.fulfilment.events", "orderId", "delete", None, "order", ["fulfilment"], ["allocation", "shipping", "view", "report"]),
    ("oms.fulfilment.state", "orderId", "compact", None, "order", ["fulfilment"], ["fulfilment"]),
    ("oms.shipments.created", "orderId", "delete", None, "order", ["shipping"], ["returns", "view", "report", "channel-sync", "erp-feed", "invoicing"]),
    ("oms.shipments.index", "carrier/trackingNumber", "compact", None, "tracking", ["shipping", "returns"], ["tracking"]),
    ("oms.tracking.inbound", "carrier/trackingNumber", "delete", None, "tracking", ["gateway", "carriers"], ["tracking"]),
    ("oms.tracking.state", "carrier/trackingNumber", "compact", None, "tracking", ["tracking"], ["tracking"]),
    ("oms.shipments.tracking", "orderId", "delete", None, "order", ["tracking", "fulfilment"], ["returns", "view", "report"]),
    ("oms.returns.requests", "orderId", "delete", None, "order", ["gateway", "warehouses", "returns"], ["returns"]),
    ("oms.returns.events", "orderId", "delete", None, "order", ["returns"], ["view", "payments-connector", "report", "erp-feed"]),
    ("oms.returns.state", "orderId", "compact", None, "order", ["returns"], ["returns"]),
    ("oms.payments.commands", "orderId", "delete", None, "order", ["shipping", "returns"], ["view", "payments-connector", "report", "channel-sync", "erp-feed"]),
    ("oms.orders.state", "orderId", "compact", None, "order", ["view"], ["view", "sla-watch", "customer-facts", "gateway", "oms orders"]),
    ("oms.notifications", "orderId", "delete", None, "order", ["view"], ["email-connector"]),
    ("oms.invoicing.state", "orderId", "compact", None, "order", ["invoicing"], ["invoicing"]),
    ("oms.invoices.requests", "legalEntity", "delete", None, "entity", ["invoicing"], ["invoice-numbering"]),
    ("oms.invoicing.series", "legalEntity/series or legalEntity/order/orderId", "compact", None, "entity", ["invoice-numbering"], ["invoice-numbering"]),
    ("oms.invoices", "legalEntity/series/sequence", "compact", None, None, ["invoice-numbering"], ["gateway", "report"]),
    ("oms.payments.outcomes", "orderId", "delete", None, "order", ["payments-connector"], ["view", "report", "invoicing"]),
    ("oms.alerts", "orderId", "delete", None, "order", ["sla-watch", "fulfilment", "every connector"], ["operators", "report"]),
    ("oms.channels.commands", "orderId", "delete", None, "order", ["channel-sync"], ["channel-connector"]),
    ("oms.channels.state", "orderId", "compact", None, "order", ["channel-sync"], ["channel-sync"]),
    ("oms.outbound.deliveries", "connector/commandId", "compact", None, "order", ["every connector"], ["every connector", "operators"]),
    ("oms.webhooks.subscriptions", "subscriptionId", "compact", None, None, ["oms webhooks", "gateway", "webhooks-connector"], ["webhooks-connector", "gateway"]),
    ("oms.channels.stock", "sku", "delete", None, "inventory", ["stock-feed"], ["stock-connector"]),
    ("oms.stockfeed.requests", "sku", "delete", None, "inventory", ["oms channels resync"], ["stock-feed"]),
    ("oms.stockfeed.state", "sku", "compact", None, "inventory", ["stock-feed"], ["stock-feed"]),
    ("oms.customers.facts", "customerId", "delete", None, "customer", ["customer-facts"], ["customers"]),
    ("oms.customers.state", "customerId", "compact", None, "customer", ["customers"], ["customers", "gateway", "CRM"]),
    ("oms.erp.feed", "orderId", "delete", None, "order", ["erp-feed"], ["ERP", "oms erp export"]),
    ("oms.sla.state", "orderId", "compact", None, "order", ["sla-watch"], ["sla-watch"]),
    ("oms.reports", "report/bucket", "compact", None, None, ["report"], ["gateway", "oms report"]),
    ("oms.idempotency", "stage/key", "compact", None, None, ["every stage"], ["every stage"]),
    ("oms.deadletter", "original key", "delete", 30 * DAY_MS, None, ["every stage"], ["operators", "report"]),
]
