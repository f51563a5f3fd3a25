import Contracts
import Fleet
import Foundation
import OrderFleetTesting
import Testing
import Workers

/// The one list of stages agrees with the topic catalog: what a stage reads and writes is
/// what topics/topics.yaml says it does.
@Suite("stage registry")
struct StageRegistryTests {
    @Test("every registered stage reads its inputs and writes its changelog as the catalog says", arguments: StageRegistry.names)
    func stageMatchesCatalog(name: String) throws {
        let rules = try RulesFile.load(path: NoidaServer.repositoryRoot.appendingPathComponent(RulesFile.defaultPath).path)
        let stage = try #require(StageRegistry.stage(named: name, rules: rules))
        #expect(stage.name == name, "the entry's name is the stage's name (its group is oms.<name>)")
        for topic in stage.inputTopics + stage.globalTables {
            let spec = try #require(TopicCatalog.spec(named: topic), "\(topic) is in the catalog")
            #expect(spec.readers.contains(name), "\(topic) lists \(name) among its readers")
        }
        if let changelog = stage.changelogTopic {
            let spec = try #require(TopicCatalog.spec(named: changelog))
            #expect(spec.writers.contains(name), "\(changelog) lists \(name) among its writers")
        }
        #expect(TopicCatalog.coPartitioningViolations(stages: Set(StageRegistry.names)).isEmpty)
    }

    @Test("an unknown name is refused with the list of stages")
    func unknownStage() throws {
        let rules = try RulesFile.load(path: NoidaServer.repositoryRoot.appendingPathComponent(RulesFile.defaultPath).path)
        #expect(StageRegistry.stage(named: "shiping", rules: rules) == nil)
        let error = #expect(throws: StageRegistry.UnknownStage.self) { try StageRegistry.stages(named: ["intake", "shiping"], rules: rules) }
        #expect(error?.description.contains("shipping") == true)
    }
}
