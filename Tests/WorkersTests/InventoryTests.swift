import Contracts
import Foundation
import Testing
import Workers

private typealias F = PipelineFixtures

/// The inventory ledger (`InventoryLedger.apply`) and `InventoryStage` through
/// `StageDriver`: a reservation succeeds exactly when on hand − reserved − safety stock
/// covers it (refusals report what is available); reserve and release are idempotent per
/// (order, line, location) whatever the command ids; release frees and deletes the
/// reservation, partially or whole; commit lowers on hand and reserved and needs a
/// reservation; adjust (absolute, delta, safety stock) ignores stale source sequences;
/// restock adds on hand; locations stay sorted.
@Suite struct InventoryTests {
    static let sku = "SKU-A"
    static let order = "order-1"

    func reserve(_ quantity: Int, at location: String = "WH-1", line: String = "1", order: String = order) -> Event {
        ReserveInventory(orderId: order, lineId: line, sku: Self.sku, location: location, quantity: quantity).event
    }

    func release(_ quantity: Int, at location: String = "WH-1", line: String = "1") -> Event {
        ReleaseInventory(orderId: Self.order, lineId: line, sku: Self.sku, location: location, quantity: quantity, reason: "test").event
    }

    func commit(_ quantity: Int, at location: String = "WH-1", line: String = "1") -> Event {
        CommitInventory(orderId: Self.order, shipmentId: "shp-1", lineId: line, sku: Self.sku, location: location, quantity: quantity).event
    }

    func adjust(_ quantity: Int, _ mode: AdjustmentMode = .absolute, at location: String = "WH-1", sequence: Int64, safety: Int? = nil) -> Event {
        AdjustInventory(sku: Self.sku, location: location, mode: mode, quantity: quantity, source: "wms", sourceSequence: sequence, safetyStock: safety).event
    }

    func key(_ location: String = "WH-1", line: String = "1") -> String {
        InventoryLedger.reservationKey(sku: Self.sku, orderId: Self.order, lineId: line, location: location)
    }

    /// A level and its open reservations, changed command by command as the stage would.
    struct Ledger {
        var level: InventoryLevel
        var reservations: [String: InventoryReservation] = [:]

        init(_ stocks: [LocationStock]) {
            level = F.level(InventoryTests.sku, stocks)
        }

        mutating func apply(_ command: Event, id: String = "cmd") throws(StageFailure) -> InventoryLedger.Change {
            let reservations = reservations
            let change = try InventoryLedger.apply(command, to: &level, reservation: { reservations[$0] }, commandId: id, now: F.now)
            for record in change.reservationChanges {
                switch record {
                case .put(.inventoryReservation(let reservation)): self.reservations[record.key] = reservation
                case .delete(let key): self.reservations[key] = nil
                case .put(let other): Issue.record("unexpected reservation change \(other)")
                }
            }
            return change
        }

        func stock(_ location: String) -> LocationStock? { level.locations.first { $0.location == location } }
    }

    // MARK: reserve

    @Test func availableIsOnHandLessReservedLessSafetyAndNeverNegative() {
        #expect(InventoryLedger.available(F.stock("WH-1", onHand: 10, reserved: 3, safety: 2)) == 5)
        #expect(InventoryLedger.available(F.stock("WH-1", onHand: 2, reserved: 5, safety: 0)) == 0)
        #expect(InventoryLedger.available(F.stock("WH-1", onHand: 4, reserved: 0, safety: 9)) == 0)
    }

    @Test func reserveUpToTheSafetyStockSucceeds() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 10, reserved: 3, safety: 2)])
        let change = try ledger.apply(reserve(5), id: "cmd-7")
        let result = try #require(change.result)
        #expect(result == InventoryResult(orderId: Self.order, lineId: "1", sku: Self.sku, location: "WH-1", quantity: 5, outcome: .reserved, available: nil, commandId: "cmd-7"))
        #expect(change.levelChanged)
        #expect(ledger.stock("WH-1") == F.stock("WH-1", onHand: 10, reserved: 8, safety: 2))
        #expect(ledger.reservations[key()] == InventoryReservation(sku: Self.sku, orderId: Self.order, lineId: "1", location: "WH-1", quantity: 5, reservedAt: F.now))
        #expect(InventoryLedger.available(try #require(ledger.stock("WH-1"))) == 0, "exactly the safety stock is left")
    }

    @Test func reserveOneMoreThanAvailableIsRefusedWithTheAvailableUnits() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 10, reserved: 3, safety: 2)])
        let before = ledger.level
        let change = try ledger.apply(reserve(6))
        #expect(change.result?.outcome == .refused)
        #expect(change.result?.available == 5)
        #expect(change.result?.quantity == 6, "the refusal names what was asked for")
        #expect(!change.levelChanged)
        #expect(change.reservationChanges.isEmpty)
        #expect(ledger.level == before)
    }

    @Test func zeroStockUnknownLocationAndNonPositiveQuantitiesAreRefused() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 0), F.stock("WH-2", onHand: 5)])
        let before = ledger.level

        let empty = try ledger.apply(reserve(1))
        #expect(empty.result?.outcome == .refused)
        #expect(empty.result?.available == 0)

        let nowhere = try ledger.apply(reserve(1, at: "WH-9"))
        #expect(nowhere.result?.outcome == .refused)
        #expect(nowhere.result?.available == 0)
        #expect(ledger.level == before, "an unknown location is not created by a reservation")

        let zero = try ledger.apply(reserve(0, at: "WH-2"))
        #expect(zero.result?.outcome == .refused)
        #expect(zero.result?.available == 5)
        #expect(ledger.level == before)
        #expect(ledger.reservations.isEmpty)
    }

    @Test func reservingTheSameOrderLineAndLocationAgainReservesOnce() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 10)])
        _ = try ledger.apply(reserve(4), id: "cmd-1")
        let again = try ledger.apply(reserve(4), id: "cmd-2")
        #expect(again.result?.outcome == .reserved)
        #expect(again.result?.quantity == 4)
        #expect(again.result?.commandId == "cmd-2", "the answer names the command it answers")
        #expect(!again.levelChanged)
        #expect(again.reservationChanges.isEmpty)
        #expect(ledger.stock("WH-1")?.reserved == 4)

        // A different quantity for the same triple is answered with what is held.
        let bigger = try ledger.apply(reserve(9), id: "cmd-3")
        #expect(bigger.result?.quantity == 4)
        #expect(ledger.stock("WH-1")?.reserved == 4)

        // Another line, or another order, is a separate reservation.
        _ = try ledger.apply(reserve(2, line: "2"))
        _ = try ledger.apply(reserve(1, order: "order-2"))
        #expect(ledger.stock("WH-1")?.reserved == 7)
        #expect(ledger.reservations.count == 3)
    }

    // MARK: release

    @Test func releaseFreesTheUnitsAndDeletesTheReservation() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 10, reserved: 1)])
        _ = try ledger.apply(reserve(4))
        let change = try ledger.apply(release(4), id: "rel-1")
        #expect(change.result == InventoryResult(orderId: Self.order, lineId: "1", sku: Self.sku, location: "WH-1", quantity: 4, outcome: .released, available: nil, commandId: "rel-1"))
        #expect(change.levelChanged)
        #expect(change.reservationChanges == [.delete(key: key())])
        #expect(ledger.stock("WH-1")?.reserved == 1, "another order's unit stays reserved")
        #expect(ledger.reservations.isEmpty)
    }

    @Test func releasingTwiceOrWithoutAReservationIsANoOp() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 10, reserved: 2)])
        _ = try ledger.apply(reserve(4))
        _ = try ledger.apply(release(4))
        let before = ledger.level
        let twice = try ledger.apply(release(4))
        #expect(twice.result?.outcome == .released)
        #expect(!twice.levelChanged)
        #expect(twice.reservationChanges.isEmpty)
        #expect(ledger.level == before, "the other order's reserved units are untouched")

        let never = try ledger.apply(release(3, line: "9"))
        #expect(!never.levelChanged)
        #expect(ledger.stock("WH-1")?.reserved == 2)
    }

    @Test func partialReleaseKeepsTheRest() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 10)])
        _ = try ledger.apply(reserve(4))
        let partial = try ledger.apply(release(1))
        #expect(partial.levelChanged)
        #expect(ledger.stock("WH-1")?.reserved == 3)
        #expect(ledger.reservations[key()]?.quantity == 3)
        guard case .put(.inventoryReservation(let rest))? = partial.reservationChanges.first else {
            Issue.record("a partial release rewrites the reservation: \(partial.reservationChanges)")
            return
        }
        #expect(rest.quantity == 3)

        // Releasing more than is held frees only what is held.
        _ = try ledger.apply(release(10))
        #expect(ledger.stock("WH-1")?.reserved == 0)
        #expect(ledger.reservations.isEmpty)
    }

    // MARK: commit

    @Test func commitLowersOnHandAndReserved() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 10, safety: 1)])
        _ = try ledger.apply(reserve(4))
        let change = try ledger.apply(commit(4), id: "com-1")
        #expect(change.result == InventoryResult(orderId: Self.order, lineId: "1", sku: Self.sku, location: "WH-1", quantity: 4, outcome: .committed, available: nil, commandId: "com-1"))
        #expect(ledger.stock("WH-1") == F.stock("WH-1", onHand: 6, reserved: 0, safety: 1))
        #expect(change.reservationChanges == [.delete(key: key())])
    }

    @Test func partialCommitKeepsTheRestReserved() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 10)])
        _ = try ledger.apply(reserve(4))
        let change = try ledger.apply(commit(1))
        #expect(change.result?.quantity == 1)
        #expect(ledger.stock("WH-1") == F.stock("WH-1", onHand: 9, reserved: 3))
        #expect(ledger.reservations[key()]?.quantity == 3)

        let rest = try ledger.apply(commit(99))
        #expect(rest.result?.quantity == 3, "commits no more than is reserved")
        #expect(ledger.stock("WH-1") == F.stock("WH-1", onHand: 6, reserved: 0))
        #expect(ledger.reservations.isEmpty)
    }

    /// At least once, a replayed commit finds its reservation gone: it takes nothing more.
    @Test func commitWithoutAReservationTakesNothing() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 10, reserved: 4)])
        let before = ledger.level
        let orphan = try ledger.apply(commit(1))
        #expect(orphan.result?.quantity == 0)
        #expect(orphan.result?.outcome == .committed)
        #expect(ledger.level == before)

        _ = try ledger.apply(reserve(2))
        _ = try ledger.apply(commit(2))
        let shipped = ledger.stock("WH-1")
        let again = try ledger.apply(commit(2))
        #expect(again.result?.quantity == 0, "committing twice takes the units once")
        #expect(ledger.stock("WH-1") == shipped)
    }

    // MARK: adjust and restock

    @Test func adjustSetsOrMovesOnHandAndIgnoresStaleSequences() throws {
        var ledger = Ledger([])
        let created = try ledger.apply(adjust(10, sequence: 5))
        #expect(created.result == nil, "adjustments concern no order")
        #expect(created.levelChanged)
        #expect(ledger.stock("WH-1") == F.stock("WH-1", onHand: 10, sequence: 5))

        _ = try ledger.apply(adjust(-3, .delta, sequence: 6))
        #expect(ledger.stock("WH-1")?.onHand == 7)

        let stale = try ledger.apply(adjust(100, sequence: 4))
        #expect(!stale.levelChanged)
        let repeated = try ledger.apply(adjust(-3, .delta, sequence: 6))
        #expect(!repeated.levelChanged, "the same sequence is not applied twice")
        #expect(ledger.stock("WH-1") == F.stock("WH-1", onHand: 7, sequence: 6))

        _ = try ledger.apply(adjust(-50, .delta, sequence: 7))
        #expect(ledger.stock("WH-1")?.onHand == 0, "on hand never goes negative")
        _ = try ledger.apply(adjust(-5, sequence: 8))
        #expect(ledger.stock("WH-1")?.onHand == 0)
        _ = try ledger.apply(adjust(12, sequence: 9, safety: 3))
        #expect(ledger.stock("WH-1") == F.stock("WH-1", onHand: 12, safety: 3, sequence: 9))
        _ = try ledger.apply(adjust(1, .delta, sequence: 10))
        #expect(ledger.stock("WH-1") == F.stock("WH-1", onHand: 13, safety: 3, sequence: 10), "no safety stock keeps the old one")
    }

    @Test func adjustKeepsReservationsAndTheSafetyStockLimitsReservations() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 10, sequence: 1)])
        _ = try ledger.apply(reserve(4))
        _ = try ledger.apply(adjust(6, sequence: 2, safety: 1))
        #expect(ledger.stock("WH-1") == F.stock("WH-1", onHand: 6, reserved: 4, safety: 1, sequence: 2))
        #expect(try ledger.apply(reserve(2, line: "2")).result?.outcome == .refused)
        #expect(try ledger.apply(reserve(1, line: "3")).result?.outcome == .reserved)
    }

    @Test func restockAddsOnHand() throws {
        var ledger = Ledger([F.stock("WH-1", onHand: 1, reserved: 1)])
        let command = RestockInventory(orderId: Self.order, returnId: "ret-1", sku: Self.sku, location: "WH-1", quantity: 2).event
        let change = try ledger.apply(command, id: "rs-1")
        #expect(change.result == InventoryResult(orderId: Self.order, lineId: "ret-1", sku: Self.sku, location: "WH-1", quantity: 2, outcome: .restocked, available: nil, commandId: "rs-1"))
        #expect(ledger.stock("WH-1") == F.stock("WH-1", onHand: 3, reserved: 1))

        let elsewhere = RestockInventory(orderId: Self.order, returnId: "ret-2", sku: Self.sku, location: "STORE-1", quantity: 1).event
        _ = try ledger.apply(elsewhere)
        #expect(ledger.stock("STORE-1") == F.stock("STORE-1", onHand: 1), "restock creates the location")
    }

    @Test func newLocationsAreInsertedInOrder() throws {
        var ledger = Ledger([])
        for (index, location) in ["WH-C", "WH-A", "WH-D", "WH-B"].enumerated() {
            _ = try ledger.apply(adjust(1, at: location, sequence: Int64(index)))
        }
        _ = try ledger.apply(RestockInventory(orderId: Self.order, returnId: "r", sku: Self.sku, location: "STORE", quantity: 1).event)
        #expect(ledger.level.locations.map(\.location) == ["STORE", "WH-A", "WH-B", "WH-C", "WH-D"])
    }

    @Test func ledgerRejectsEventsThatAreNotInventoryCommands() {
        var level = F.level(Self.sku, [])
        #expect(throws: StageFailure.self) {
            _ = try InventoryLedger.apply(F.placed().event, to: &level, reservation: { _ in nil }, commandId: "x", now: F.now)
        }
    }

    // MARK: InventoryStage through StageDriver

    @Test func stageWritesTheLevelAndReservationRecordsAndRoutesResults() throws {
        var driver = StageDriver(stage: InventoryStage())
        let later = F.now.addingTimeInterval(60)
        #expect(driver.handle(F.envelope("a-1", adjust(5, sequence: 1)), now: F.now).outputs.isEmpty)

        let result = driver.handle(F.envelope("r-1", reserve(3)), offset: 1, now: later)
        #expect(result.kind == .processed)
        try #require(result.outputs.count == 1)
        #expect(result.outputs[0].topic == InventoryResult.topic)
        #expect(result.outputs[0].envelope.key == Self.order, "results are routed back by order id")
        #expect(result.stateRecords.map(\.key) == [Self.sku, key()])
        #expect(key() == "SKU-A/order-1/1/WH-1")

        guard case .inventoryLevel(let level)? = driver.value(Self.sku) else {
            Issue.record("the level is kept under the SKU")
            return
        }
        #expect(level.locations == [F.stock("WH-1", onHand: 5, reserved: 3, sequence: 1)])
        #expect(level.updatedAt == later)
        guard case .inventoryReservation(let reservation)? = driver.value(key()) else {
            Issue.record("the reservation is kept under its key")
            return
        }
        #expect(reservation.quantity == 3)
        #expect(reservation.event.payload.partitionKey == key())
    }

    @Test func stageReservesOnceForCommandsWithDifferentIds() throws {
        var driver = StageDriver(stage: InventoryStage())
        _ = driver.handle(F.envelope("a-1", adjust(5, sequence: 1)), now: F.now)
        let first = driver.handle(F.envelope("r-1", reserve(3)), offset: 1, now: F.now)
        let second = driver.handle(F.envelope("r-2", reserve(3)), offset: 2, now: F.now)
        #expect(second.kind == .processed, "a new command id is not a runtime duplicate")
        #expect(second.stateRecords.isEmpty, "but nothing changes")
        guard case .inventoryResult(let answer)? = F.events(second).first, case .inventoryResult(let firstAnswer)? = F.events(first).first else {
            Issue.record("both commands are answered")
            return
        }
        #expect(answer.outcome == .reserved)
        #expect(answer.commandId == "r-2")
        #expect(firstAnswer.commandId == "r-1")
        guard case .inventoryLevel(let level)? = driver.value(Self.sku) else { return }
        #expect(level.locations.first?.reserved == 3)

        // The same command id again is skipped by the runtime.
        #expect(driver.handle(F.envelope("r-2", reserve(3)), offset: 3, now: F.now).kind == .duplicate)
    }

    @Test func stageReleaseDeletesTheRecordAndCommitLowersStock() throws {
        var driver = StageDriver(stage: InventoryStage())
        _ = driver.handle(F.envelope("a-1", adjust(10, sequence: 1)), now: F.now)
        _ = driver.handle(F.envelope("r-1", reserve(3)), offset: 1, now: F.now)
        _ = driver.handle(F.envelope("r-2", reserve(2, line: "2")), offset: 2, now: F.now)

        let released = driver.handle(F.envelope("x-1", release(3)), offset: 3, now: F.now)
        #expect(released.stateRecords.count == 2)
        #expect(released.stateRecords.last?.key == key())
        #expect(released.stateRecords.last?.envelope == nil, "the reservation record is tombstoned")
        #expect(driver.value(key()) == nil)

        let twice = driver.handle(F.envelope("x-2", release(3)), offset: 4, now: F.now)
        #expect(twice.stateRecords.isEmpty)
        #expect(F.events(twice).count == 1, "the release is still answered")

        _ = driver.handle(F.envelope("c-1", commit(2, line: "2")), offset: 5, now: F.now)
        guard case .inventoryLevel(let level)? = driver.value(Self.sku) else {
            Issue.record("no level")
            return
        }
        #expect(level.locations == [F.stock("WH-1", onHand: 8, reserved: 0, sequence: 1)])
        #expect(driver.value(key(line: "2")) == nil)

        // A replayed commit (at least once) finds the reservation gone and takes nothing.
        let orphan = driver.handle(F.envelope("c-2", commit(1, line: "2")), offset: 6, now: F.now)
        #expect(orphan.kind == .processed)
        #expect(orphan.stateRecords.isEmpty, "the level does not change")
    }

    @Test func stageKeepsSkusApartAndRejectsOtherEvents() throws {
        var driver = StageDriver(stage: InventoryStage())
        _ = driver.handle(F.envelope("a-1", adjust(5, sequence: 1)), now: F.now)
        let other = AdjustInventory(sku: "SKU-B", location: "WH-1", mode: .absolute, quantity: 1, source: "wms", sourceSequence: 1).event
        _ = driver.handle(F.envelope("a-2", other), offset: 1, now: F.now)
        let refused = driver.handle(F.envelope("r-1", ReserveInventory(orderId: "o", lineId: "1", sku: "SKU-B", location: "WH-1", quantity: 2).event), offset: 2, now: F.now)
        guard case .inventoryResult(let answer)? = F.events(refused).first else {
            Issue.record("no answer")
            return
        }
        #expect(answer.outcome == .refused)
        #expect(answer.available == 1)

        let wrong = driver.handle(F.envelope("w-1", F.placed().event), offset: 3, now: F.now)
        guard case .rejected? = F.failure(wrong) else {
            Issue.record("inventory reads commands only: \(wrong.kind)")
            return
        }
    }
}
