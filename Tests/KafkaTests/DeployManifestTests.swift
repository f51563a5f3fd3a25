import Configuration
import Contracts
import Fleet
import Foundation
import Gateway
import Outbound
import Testing
import Workers
import Yams

@testable import oms

/// The deployment files (deploy/docker-compose.yml, deploy/k8s/*.yaml) against the code.
///
/// Neither Docker nor Kubernetes runs where the project is built, so these files are never
/// applied in a test; this parse is what keeps them in step with the stages `oms worker`
/// knows, their input topics' partition counts and the configuration's variable names.
/// Each failure names the file and the object at fault.
@Suite("deploy manifests")
struct DeployManifestTests {
    // MARK: Kubernetes: stage objects

    @Test("a pipeline stage has one Deployment, PodDisruptionBudget and ScaledObject", arguments: StageCatalog.pipeline)
    func stageObjects(stage: String) throws {
        let manifests = try DeployFiles.kubernetes()
        let deployments = manifests.filter { $0.kind == "Deployment" && $0.containers.contains { $0.stage == stage } }
        #expect(deployments.count == 1, "deploy/k8s: \(deployments.count) Deployments run `oms worker \(stage)`, want 1: \(deployments.map(\.label))")
        guard let deployment = deployments.first else { return }

        let budgets = manifests.filter { $0.kind == "PodDisruptionBudget" && $0.selectsPods(of: deployment) }
        #expect(budgets.count == 1, "deploy/k8s: \(budgets.count) PodDisruptionBudgets select the pods of \(deployment.label), want 1: \(budgets.map(\.label))")

        let group = "oms.\(stage)"
        let scalers = manifests.filter { $0.kind == "ScaledObject" && $0.kafkaTriggers.contains { $0["consumerGroup"] as? String == group } }
        #expect(scalers.count == 1, "deploy/k8s: \(scalers.count) ScaledObjects scale consumer group \(group), want 1: \(scalers.map(\.label))")
        for scaler in scalers {
            #expect(scaler.string("spec", "scaleTargetRef", "name") == deployment.name, "\(scaler.label): scaleTargetRef.name is \(scaler.string("spec", "scaleTargetRef", "name") ?? "missing"), but \(deployment.label) runs \(stage)")
            let kind = scaler.string("spec", "scaleTargetRef", "kind") ?? "Deployment"
            #expect(kind == "Deployment", "\(scaler.label): scaleTargetRef.kind is \(kind), but \(stage) runs as a Deployment")
        }
    }

    @Test("a connector has one Deployment, PodDisruptionBudget and ScaledObject", arguments: ConnectorCatalog.names)
    func connectorObjects(connector: String) throws {
        let manifests = try DeployFiles.kubernetes()
        let deployments = manifests.filter { $0.kind == "Deployment" && $0.containers.contains { $0.connector == connector } }
        #expect(deployments.count == 1, "deploy/k8s: \(deployments.count) Deployments run `oms connector \(connector)`, want 1")
        guard let deployment = deployments.first else { return }
        let budgets = manifests.filter { $0.kind == "PodDisruptionBudget" && $0.selectsPods(of: deployment) }
        #expect(budgets.count == 1, "deploy/k8s: \(budgets.count) PodDisruptionBudgets select the pods of \(deployment.label), want 1")
        let scalers = manifests.filter { $0.kind == "ScaledObject" && $0.kafkaTriggers.contains { $0["consumerGroup"] as? String == "oms.\(connector)" } }
        #expect(scalers.count == 1 && scalers.first?.string("spec", "scaleTargetRef", "name") == deployment.name, "deploy/k8s: oms.\(connector) needs one ScaledObject targeting \(deployment.label)")
    }

    @Test("every ScaledObject scales a stage's group within its input partitions, with the workers' connection")
    func scalers() throws {
        let manifests = try DeployFiles.kubernetes()
        let stages = try DeployFiles.stages()
        let config = try DeployFiles.workerConfigMap(in: manifests)
        let scalers = manifests.filter { $0.kind == "ScaledObject" }
        #expect(!scalers.isEmpty, "deploy/k8s: no ScaledObject")
        for scaler in scalers {
            let triggers = scaler.list("spec", "triggers").compactMap { $0 as? [String: Any] }
            #expect(!triggers.isEmpty && triggers.allSatisfy { $0["type"] as? String == "kafka" }, "\(scaler.label): every trigger must be of type kafka (consumer lag)")
            let minimum = scaler.value("spec", "minReplicaCount") as? Int ?? 0
            // A worker restores state before it processes anything and the view and SLA
            // timers need one running; KEDA also loses sight of a group with no members.
            #expect(minimum >= 1, "\(scaler.label): minReplicaCount \(minimum) lets the stage scale to zero")
            guard let maximum = scaler.value("spec", "maxReplicaCount") as? Int else {
                Issue.record("\(scaler.label): no integer maxReplicaCount (KEDA's default is 100, far above any partition count)")
                continue
            }
            #expect(minimum <= maximum, "\(scaler.label): minReplicaCount \(minimum) > maxReplicaCount \(maximum)")
            for trigger in scaler.kafkaTriggers {
                let group = trigger["consumerGroup"] as? String ?? "(none)"
                let member = String(group.dropFirst(4))
                let inputs = stages[member]?.inputTopics ?? ConnectorCatalog.inputTopics[member]
                guard group.hasPrefix("oms."), let inputs else {
                    Issue.record("\(scaler.label): consumerGroup \(group) is not oms.<stage> of a pipeline stage (\(StageCatalog.pipeline.joined(separator: ", "))) or oms.<connector> (\(ConnectorCatalog.names.joined(separator: ", ")))")
                    continue
                }
                let partitions = inputs.map { topic -> (String, Int?) in (topic, TopicCatalog.spec(named: topic)?.partitions) }
                for (topic, count) in partitions where count == nil {
                    Issue.record("\(scaler.label): input topic \(topic) of \(member) is not in TopicCatalog")
                }
                if let fewest = partitions.compactMap({ $0.1 }).min() {
                    // A partition has one consumer in a group: workers beyond the
                    // partition count get nothing and stand idle.
                    #expect(maximum <= fewest, "\(scaler.label): maxReplicaCount \(maximum) exceeds \(fewest), the fewest partitions among \(member)'s inputs \(inputs)")
                }
                if let topic = trigger["topic"] as? String {
                    #expect(inputs.contains(topic), "\(scaler.label): trigger topic \(topic) is not an input of \(member) \(inputs)")
                }
                #expect(trigger["lagThreshold"] is String, "\(scaler.label): lagThreshold must be a quoted string (KEDA metadata values are strings)")
                #expect(trigger["bootstrapServers"] as? String == config.data["KAFKA_BROKERS"], "\(scaler.label): bootstrapServers \(trigger["bootstrapServers"] ?? "missing") differs from KAFKA_BROKERS in \(config.label)")
                checkSecurity(of: trigger, in: scaler, against: config)
            }
            for reference in scaler.kafkaAuthenticationRefs {
                let found = manifests.contains { $0.kind == "TriggerAuthentication" && $0.name == reference }
                #expect(found, "\(scaler.label): authenticationRef \(reference) names no TriggerAuthentication in deploy/k8s")
            }
        }
        for authentication in manifests where authentication.kind == "TriggerAuthentication" {
            for case let target as [String: Any] in authentication.list("spec", "secretTargetRef") {
                let secret = target["name"] as? String ?? "(none)", key = target["key"] as? String ?? "(none)"
                let keys = manifests.first { $0.kind == "Secret" && $0.name == secret }?.data.keys
                #expect(keys?.contains(key) == true, "\(authentication.label): secretTargetRef \(secret)/\(key) is not a key of a Secret in deploy/k8s")
            }
        }
    }

    /// KEDA reads the lag with its own client: its SASL mode and TLS must match what the
    /// workers use, or the scaler cannot connect and the stage never scales.
    func checkSecurity(of trigger: [String: Any], in scaler: DeployFiles.Document, against config: DeployFiles.Document) {
        let protocolName = (config.data["KAFKA_SECURITY_PROTOCOL"] ?? "plaintext").lowercased()
        let tls = (trigger["tls"] as? String ?? "disable") == "enable"
        #expect(tls == ["ssl", "sasl_ssl"].contains(protocolName), "\(scaler.label): tls \(trigger["tls"] ?? "unset") does not match KAFKA_SECURITY_PROTOCOL=\(protocolName) in \(config.label)")
        let sasl = trigger["sasl"] as? String ?? "none"
        if protocolName.hasPrefix("sasl_") {
            let mechanisms = ["PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512", "GSSAPI": "gssapi", "OAUTHBEARER": "oauthbearer"]
            let mechanism = (config.data["KAFKA_SASL_MECHANISM"] ?? "GSSAPI").uppercased()
            #expect(sasl == mechanisms[mechanism], "\(scaler.label): sasl \(sasl) does not match KAFKA_SASL_MECHANISM=\(mechanism) in \(config.label)")
            #expect(!scaler.kafkaAuthenticationRefs.isEmpty, "\(scaler.label): SASL needs an authenticationRef for the username and password")
        } else {
            #expect(sasl == "none", "\(scaler.label): sasl \(sasl) but KAFKA_SECURITY_PROTOCOL=\(protocolName) in \(config.label)")
        }
    }

    // MARK: Kubernetes: pods

    @Test("workers and the gateway: health probes on HTTP_PORT, resources, identity")
    func pods() throws {
        let manifests = try DeployFiles.kubernetes()
        let deployments = manifests.filter { $0.kind == "Deployment" }
        #expect(deployments.contains { $0.containers.contains(where: \.isGateway) }, "deploy/k8s: no Deployment runs `oms gateway`")
        for deployment in deployments {
            let containers = deployment.containers.filter { $0.stage != nil || $0.isGateway || $0.connector != nil }
            #expect(!containers.isEmpty, "\(deployment.label): runs neither `oms worker <stage>`, `oms connector <name>` nor `oms gateway`")
            for container in containers {
                let port = Int(container.envValues["HTTP_PORT"] ?? "") ?? (container.isGateway ? nil : 9464)
                if container.isGateway {
                    #expect(port == 8080, "\(container.label): HTTP_PORT must be 8080 (the gateway's API and health port)")
                }
                for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
                    let get = container.body[probe].flatMap { ($0 as? [String: Any])?["httpGet"] as? [String: Any] }
                    #expect(get?["path"] as? String == path, "\(container.label): \(probe) must GET \(path)")
                    let probePort = container.resolvePort(get?["port"])
                    #expect(probePort != nil && probePort == port, "\(container.label): \(probe) port \(get?["port"] ?? "missing") is not HTTP_PORT \(port.map { "\($0)" } ?? "unset")")
                }
                for (section, resource) in [("requests", "cpu"), ("requests", "memory"), ("limits", "memory")] {
                    let value = container.body["resources"].flatMap { ($0 as? [String: Any])?[section] as? [String: Any] }?[resource]
                    #expect(value != nil, "\(container.label): no resources.\(section).\(resource)")
                }
            }
            guard containers.contains(where: { $0.stage != nil || $0.connector != nil }) else { continue }
            // KEDA's HPA owns the count; a fixed one resets it at every `kubectl apply`.
            #expect(deployment.value("spec", "replicas") == nil, "\(deployment.label): a replicas field fights the ScaledObject's autoscaler")
            #expect(deployment.value("spec", "template", "spec", "terminationGracePeriodSeconds") is Int, "\(deployment.label): no terminationGracePeriodSeconds (SIGTERM commits the open transaction; give it the time)")
            for container in containers {
                let identity = container.env.first { $0["name"] as? String == "WORKER_INSTANCE_ID" }
                let field = identity.flatMap { (($0["valueFrom"] as? [String: Any])?["fieldRef"] as? [String: Any])?["fieldPath"] as? String }
                // Transactional ids are oms.<stage>.<instance id>: two pods of a stage
                // with one id would fence each other in a restart loop.
                #expect(field == "metadata.name", "\(container.label): WORKER_INSTANCE_ID must come from metadata.name (downward API), unique per pod")
            }
        }
        for autoscaler in manifests where autoscaler.kind == "HorizontalPodAutoscaler" {
            let target = deployments.first { $0.name == autoscaler.string("spec", "scaleTargetRef", "name") }
            #expect(target != nil, "\(autoscaler.label): scaleTargetRef names no Deployment in deploy/k8s")
            #expect(target?.containers.contains { $0.stage != nil } != true, "\(autoscaler.label): a stage is scaled by its ScaledObject (lag); a second autoscaler would fight it")
        }
        let gateways = deployments.filter { $0.containers.contains(where: \.isGateway) }
        for gateway in gateways {
            let autoscaled = manifests.contains { $0.kind == "HorizontalPodAutoscaler" && $0.string("spec", "scaleTargetRef", "name") == gateway.name }
            #expect(autoscaled, "\(gateway.label): no HorizontalPodAutoscaler scales it")
            let services = manifests.filter { $0.kind == "Service" && $0.selectsPods(of: gateway) }
            #expect(!services.isEmpty, "\(gateway.label): no Service selects its pods")
            for service in services {
                for case let port as [String: Any] in service.list("spec", "ports") {
                    let target = port["targetPort"] ?? port["port"]
                    #expect(gateway.containers.first(where: \.isGateway)?.resolvePort(target) == 8080, "\(service.label): targetPort \(target ?? "missing") is not the gateway's port 8080")
                }
            }
        }
        for budget in manifests where budget.kind == "PodDisruptionBudget" {
            let selected = deployments.filter(budget.selectsPods(of:))
            #expect(selected.count == 1, "\(budget.label): selects the pods of \(selected.count) Deployments \(selected.map(\.name)), want 1")
        }
    }

    @Test("a Job runs `oms topics apply` before the stages")
    func topicJob() throws {
        let jobs = try DeployFiles.kubernetes().filter { $0.kind == "Job" && $0.containers.contains { $0.subcommand.starts(with: ["topics", "apply"]) } }
        #expect(jobs.count == 1, "deploy/k8s: \(jobs.count) Jobs run `oms topics apply`, want 1")
    }

    // MARK: Kubernetes: configuration

    @Test("every environment variable set in deploy/k8s is one the workers or the gateway read")
    func kubernetesEnvironment() throws {
        let manifests = try DeployFiles.kubernetes()
        let known = DeployFiles.knownEnvironment
        var sources: [String: (source: DeployFiles.Document, user: String)] = [:]
        for container in manifests.flatMap(\.containers) {
            var defined = Set<String>()
            for entry in container.env {
                let name = entry["name"] as? String ?? "(unnamed)"
                defined.insert(name)
                let isKnown = known.contains(name)
                #expect(isKnown, "\(container.label): env \(name) is read by neither the workers (WorkerConfiguration) nor the gateway (GatewayConfiguration)")
                if let value = entry["value"] {
                    #expect(value is String, "\(container.label): env \(name) must be a quoted string, not \(value)")
                }
                for (reference, kind) in [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")] {
                    guard let ref = (entry["valueFrom"] as? [String: Any])?[reference] as? [String: Any] else { continue }
                    let source = manifests.first { $0.kind == kind && $0.name == ref["name"] as? String }
                    #expect(source?.data[ref["key"] as? String ?? ""] != nil, "\(container.label): env \(name) refers to \(kind) \(ref["name"] ?? "?") key \(ref["key"] ?? "?"), which deploy/k8s does not define")
                }
            }
            for (kind, name) in container.envSources {
                guard let source = manifests.first(where: { $0.kind == kind && $0.name == name }) else {
                    Issue.record("\(container.label): envFrom \(kind) \(name) is not defined in deploy/k8s")
                    continue
                }
                defined.formUnion(source.data.keys)
                sources[source.label] = sources[source.label] ?? (source, container.label)
            }
            // Kubernetes leaves $(NAME) as it is when NAME is not defined: the process
            // would get the literal text, e.g. as a password.
            for argument in container.commandLine {
                for name in DeployFiles.references(in: argument) {
                    let isDefined = defined.contains(name)
                    #expect(isDefined, "\(container.label): argument \(argument) refers to $(\(name)), which the container does not define")
                }
            }
        }
        // Once per ConfigMap or Secret, not once per container that takes it.
        for (source, user) in sources.values.sorted(by: { $0.source.label < $1.source.label }) {
            for key in source.data.keys.sorted() {
                let isKnown = known.contains(key)
                #expect(isKnown, "\(source.label): key \(key) (taken by envFrom in \(user), among others) is read by neither the workers nor the gateway")
            }
        }
        for document in manifests where document.kind == "ConfigMap" || document.kind == "Secret" {
            for (key, value) in document.rawData {
                #expect(value is String, "\(document.label): value of \(key) must be a string (quote numbers and booleans)")
            }
        }
    }

    @Test("the rules ConfigMap is config/rules.yaml and config/tax-rates.csv, mounted where RULES_FILE points")
    func rules() throws {
        let manifests = try DeployFiles.kubernetes()
        let root = try DeployFiles.repositoryRoot()
        let shipped = try String(contentsOf: root.appendingPathComponent(RulesFile.defaultPath), encoding: .utf8)
        let config = try DeployFiles.workerConfigMap(in: manifests)
        let path = config.data["RULES_FILE"]
        #expect(path != nil, "\(config.label): no RULES_FILE")
        let rulesMaps = manifests.filter { $0.kind == "ConfigMap" && $0.data.keys.contains("rules.yaml") }
        #expect(rulesMaps.count == 1, "deploy/k8s: \(rulesMaps.count) ConfigMaps hold rules.yaml, want 1")
        guard let rulesMap = rulesMaps.first, let path else { return }
        let copy = rulesMap.data["rules.yaml"] ?? ""
        let same = copy.trimmingCharacters(in: .whitespacesAndNewlines) == shipped.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(same, "\(rulesMap.label): rules.yaml differs from \(RulesFile.defaultPath); copy the file into it")
        // The tax table the rules name, next to them (invoicing.taxTable is relative to the rules file).
        let taxes = try String(contentsOf: root.appendingPathComponent("config/tax-rates.csv"), encoding: .utf8)
        let taxesCopy = rulesMap.data["tax-rates.csv"] ?? ""
        #expect(
            taxesCopy.trimmingCharacters(in: .whitespacesAndNewlines) == taxes.trimmingCharacters(in: .whitespacesAndNewlines),
            "\(rulesMap.label): tax-rates.csv differs from config/tax-rates.csv; copy the file into it")

        for deployment in manifests where deployment.kind == "Deployment" {
            let stages = deployment.containers.filter { $0.stage != nil }
            guard !stages.isEmpty else { continue }
            let volumes = deployment.list("spec", "template", "spec", "volumes").compactMap { $0 as? [String: Any] }
                .filter { ($0["configMap"] as? [String: Any])?["name"] as? String == rulesMap.name }
                .compactMap { $0["name"] as? String }
            for container in stages {
                let mounted = container.mounts.contains { mount in
                    guard let volume = mount["name"] as? String, volumes.contains(volume), let at = mount["mountPath"] as? String else { return false }
                    // A directory mount shows every key as a file; a subPath mount is the file itself.
                    return mount["subPath"] == nil ? at + "/rules.yaml" == path : at == path && mount["subPath"] as? String == "rules.yaml"
                }
                #expect(mounted, "\(container.label): ConfigMap \(rulesMap.name) is not mounted at \(path) (RULES_FILE)")
            }
        }
    }

    // MARK: docker compose

    @Test("docker-compose.yml: a worker per stage, the topic job and the gateway")
    func compose() throws {
        let compose = try DeployFiles.compose()
        let label = compose.file
        let services = compose.map("services").compactMapValues { $0 as? [String: Any] }
        func command(_ service: [String: Any]) -> [String] {
            if let text = service["command"] as? String { return text.split(separator: " ").map(String.init) }
            return (service["command"] as? [Any] ?? []).map { "\($0)" }
        }
        func dependsOn(_ service: [String: Any], _ other: String, _ condition: String) -> Bool {
            if let list = service["depends_on"] as? [Any] { return condition == "service_started" && list.contains { $0 as? String == other } }
            return ((service["depends_on"] as? [String: Any])?[other] as? [String: Any])?["condition"] as? String == condition
        }

        let topics = services.filter { command($0.value).starts(with: ["topics", "apply"]) }
        #expect(topics.count == 1, "\(label): \(topics.count) services run `oms topics apply`, want 1")
        let topicJob = topics.first?.key ?? "topics"
        if let job = topics.first?.value {
            let arguments = command(job)
            let brokers = arguments.firstIndex(of: "--brokers").map { arguments.index(after: $0) }.flatMap { $0 < arguments.count ? arguments[$0] : nil }
                ?? DeployFiles.environment(of: job)["KAFKA_BROKERS"]
            checkBrokers(brokers, of: "service \(topicJob)", in: label, services: services)
        }

        for stage in StageCatalog.pipeline {
            let workers = services.filter { command($0.value) == ["worker", stage] }
            #expect(workers.count == 1, "\(label): \(workers.count) services run `oms worker \(stage)`, want 1: \(workers.keys.sorted())")
            for (name, worker) in workers {
                #expect(dependsOn(worker, topicJob, "service_completed_successfully"), "\(label): service \(name) must wait for \(topicJob) to complete (a worker exits when its topics are missing)")
                checkBrokers(DeployFiles.environment(of: worker)["KAFKA_BROKERS"], of: "service \(name)", in: label, services: services)
            }
        }
        for (name, service) in services where command(service).first == "worker" {
            let stage = command(service).dropFirst().first ?? "(none)"
            #expect(StageCatalog.pipeline.contains(stage), "\(label): service \(name) runs `oms worker \(stage)`, not a pipeline stage")
        }

        let gateways = services.filter { command($0.value) == ["gateway"] }
        #expect(gateways.count == 1, "\(label): \(gateways.count) services run `oms gateway`, want 1")
        for (name, gateway) in gateways {
            let environment = DeployFiles.environment(of: gateway)
            #expect(environment["HTTP_PORT"] == "8080", "\(label): service \(name) must set HTTP_PORT=8080")
            let ports = (gateway["ports"] as? [Any] ?? []).map { "\($0)" }
            #expect(ports.contains { $0.hasSuffix(":8080") }, "\(label): service \(name) does not publish port 8080 (ports: \(ports))")
            checkBrokers(environment["KAFKA_BROKERS"], of: "service \(name)", in: label, services: services)
        }

        // Only the oms containers: the broker's own KAFKA_* settings are not ours.
        let known = DeployFiles.knownEnvironment
        for (name, service) in services where !command(service).isEmpty && (service["build"] != nil || (service["image"] as? String)?.contains("oms") == true) {
            for variable in DeployFiles.environment(of: service).keys.sorted() {
                let isKnown = known.contains(variable)
                #expect(isKnown, "\(label): service \(name) sets \(variable), which neither the workers nor the gateway read")
            }
        }
    }

    /// The bootstrap servers must name a service of the same compose file.
    func checkBrokers(_ brokers: String?, of owner: String, in label: String, services: [String: [String: Any]]) {
        guard let brokers else {
            Issue.record("\(label): \(owner) has no --brokers and no KAFKA_BROKERS")
            return
        }
        for host in brokers.split(separator: ",").map({ String($0.split(separator: ":").first ?? "") }) {
            #expect(services[host] != nil, "\(label): \(owner) connects to \(host), which is not a service of the file")
        }
    }
}

/// Reading the deployment files; shared by the tests above.
enum DeployFiles {
    /// Every variable the workers (``WorkerConfiguration``, including `RULES_FILE`) or
    /// the gateway (``GatewayConfiguration``) read.
    static let knownEnvironment = WorkerConfiguration.knownEnvironmentVariables.union(GatewayConfiguration.knownEnvironmentVariables)

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The directory holding Package.swift, found from this file's path so that the
    /// test does not depend on the working directory it is run from.
    static func repositoryRoot(from file: String = #filePath) throws -> URL {
        var url = URL(fileURLWithPath: file)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        throw Failure(description: "no Package.swift above \(file)")
    }

    /// The pipeline's stages as `oms worker` builds them, with the repository's rules.
    static func stages() throws -> [String: any Stage] {
        let rules = try repositoryRoot().appendingPathComponent(RulesFile.defaultPath).path
        let reader = ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: [WorkerConfiguration.environmentName(of: RulesFile.key): rules]))
        var stages: [String: any Stage] = [:]
        for name in StageCatalog.pipeline { stages[name] = try StageCatalog.make(name, reader: reader) }
        return stages
    }

    /// Every document of deploy/k8s/*.yaml, in file order.
    static func kubernetes() throws -> [Document] {
        let root = try repositoryRoot()
        let directory = root.appendingPathComponent("deploy/k8s")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        guard !files.isEmpty else { throw Failure(description: "deploy/k8s holds no YAML file") }
        return try files.flatMap { try documents(in: "deploy/k8s/\($0)", root: root) }
    }

    /// deploy/docker-compose.yml, as one document.
    static func compose() throws -> Document {
        let parsed = try documents(in: "deploy/docker-compose.yml", root: try repositoryRoot())
        guard parsed.count == 1, let compose = parsed.first else {
            throw Failure(description: "deploy/docker-compose.yml: \(parsed.count) YAML documents, want 1")
        }
        return compose
    }

    static func documents(in file: String, root: URL) throws -> [Document] {
        let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
        var sequence = try Yams.load_all(yaml: text)
        var documents: [Document] = []
        var index = 0
        while let next = sequence.next() {
            index += 1
            if next is NSNull { continue }  // an empty document, e.g. after a trailing ---
            guard let body = next as? [String: Any] else {
                throw Failure(description: "\(file): document \(index) is not a mapping")
            }
            documents.append(Document(file: file, body: body))
        }
        if let error = sequence.error { throw Failure(description: "\(file): \(error)") }
        return documents
    }

    /// The workers' ConfigMap: the one every stage container takes its environment from.
    static func workerConfigMap(in manifests: [Document]) throws -> Document {
        let perContainer = manifests.flatMap(\.containers).filter { $0.stage != nil }
            .map { container in Set(container.envSources.filter { $0.kind == "ConfigMap" }.map(\.name)) }
        var shared = perContainer.first ?? []
        for names in perContainer { shared.formIntersection(names) }
        guard shared.count == 1, let name = shared.first,
            let config = manifests.first(where: { $0.kind == "ConfigMap" && $0.name == name })
        else {
            throw Failure(description: "deploy/k8s: the stage containers do not share exactly one envFrom ConfigMap defined in deploy/k8s")
        }
        return config
    }

    /// A compose service's environment, given as a mapping or as `NAME=value` entries.
    static func environment(of service: [String: Any]) -> [String: String] {
        if let list = service["environment"] as? [Any] {
            var result: [String: String] = [:]
            for entry in list.map({ "\($0)" }) {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                result[parts[0]] = parts.count > 1 ? parts[1] : ""
            }
            return result
        }
        return (service["environment"] as? [String: Any] ?? [:]).mapValues { "\($0)" }
    }

    /// The names in `$(NAME)` references, which Kubernetes expands in command and args.
    static func references(in argument: String) -> [String] {
        var names: [String] = []
        var rest = Substring(argument)
        while let start = rest.range(of: "$(") {
            rest = rest[start.upperBound...]
            guard let end = rest.firstIndex(of: ")") else { break }
            names.append(String(rest[..<end]))
            rest = rest[rest.index(after: end)...]
        }
        return names
    }

    /// One YAML document of a deployment file, with the file's path for messages.
    struct Document {
        /// Relative to the repository root.
        var file: String
        var body: [String: Any]

        var kind: String { body["kind"] as? String ?? "(no kind)" }
        var name: String { string("metadata", "name") ?? "(no name)" }
        /// `deploy/k8s/40-stage-intake.yaml: Deployment oms-intake`.
        var label: String { "\(file): \(kind) \(name)" }

        func value(_ path: String...) -> Any? { walk(path) }
        func string(_ path: String...) -> String? { walk(path) as? String }
        func map(_ path: String...) -> [String: Any] { walk(path) as? [String: Any] ?? [:] }
        func list(_ path: String...) -> [Any] { walk(path) as? [Any] ?? [] }

        private func walk(_ path: [String]) -> Any? {
            var node: Any? = body
            for key in path { node = (node as? [String: Any])?[key] }
            return node
        }

        /// A ConfigMap's or Secret's entries as written (`data` and `stringData`).
        var rawData: [String: Any] {
            map("data").merging(map("stringData")) { first, _ in first }
        }

        /// Its string entries; a Secret's `data` is base64 and only its keys count.
        var data: [String: String] { rawData.compactMapValues { $0 as? String } }

        /// The containers of its pod template (Deployment, Job, ...).
        var containers: [Container] {
            let pod = map("spec", "template", "spec")
            return ((pod["initContainers"] as? [Any] ?? []) + (pod["containers"] as? [Any] ?? []))
                .compactMap { $0 as? [String: Any] }.map { Container(owner: self, body: $0) }
        }

        /// Whether this object's `spec.selector` (matchLabels, or a Service's plain map)
        /// picks the pods of `workload`.
        func selectsPods(of workload: Document) -> Bool {
            let selector = map("spec", "selector")
            let labels = (selector["matchLabels"] as? [String: Any]) ?? (kind == "Service" ? selector : [:])
            let podLabels = workload.map("spec", "template", "metadata", "labels")
            return !labels.isEmpty && labels.allSatisfy { key, value in podLabels[key].map { "\($0)" } == "\(value)" }
        }

        /// A ScaledObject's kafka triggers' metadata.
        var kafkaTriggers: [[String: Any]] {
            list("spec", "triggers").compactMap { $0 as? [String: Any] }.filter { $0["type"] as? String == "kafka" }
                .compactMap { $0["metadata"] as? [String: Any] }
        }

        /// The TriggerAuthentications a ScaledObject's kafka triggers name.
        var kafkaAuthenticationRefs: [String] {
            list("spec", "triggers").compactMap { $0 as? [String: Any] }.filter { $0["type"] as? String == "kafka" }
                .compactMap { ($0["authenticationRef"] as? [String: Any])?["name"] as? String }
        }
    }

    /// A container of a pod template.
    struct Container {
        var owner: Document
        var body: [String: Any]

        var label: String { "\(owner.label) container \(body["name"] as? String ?? "(unnamed)")" }

        /// `command` then `args`, as the process gets them (the image's entrypoint is `oms`).
        var commandLine: [String] {
            ((body["command"] as? [Any] ?? []) + (body["args"] as? [Any] ?? [])).map { "\($0)" }
        }

        /// The `oms` subcommand and its arguments.
        var subcommand: [String] { Array(commandLine.drop { $0 == "oms" || $0.hasSuffix("/oms") }) }

        /// The stage of `oms worker <stage>`.
        var stage: String? {
            let arguments = subcommand
            return arguments.first == "worker" && arguments.count > 1 ? arguments[1] : nil
        }

        var isGateway: Bool { subcommand.first == "gateway" }

        /// The connector of `oms connector <name>`.
        var connector: String? {
            let arguments = subcommand
            return arguments.first == "connector" && arguments.count > 1 ? arguments[1] : nil
        }

        var env: [[String: Any]] { (body["env"] as? [Any] ?? []).compactMap { $0 as? [String: Any] } }

        /// Plain `value`s of `env`.
        var envValues: [String: String] {
            var values: [String: String] = [:]
            for entry in env {
                if let name = entry["name"] as? String, let value = entry["value"] { values[name] = "\(value)" }
            }
            return values
        }

        /// The ConfigMaps and Secrets of `envFrom`.
        var envSources: [(kind: String, name: String)] {
            (body["envFrom"] as? [Any] ?? []).compactMap { $0 as? [String: Any] }.compactMap { source in
                if let name = (source["configMapRef"] as? [String: Any])?["name"] as? String { return ("ConfigMap", name) }
                if let name = (source["secretRef"] as? [String: Any])?["name"] as? String { return ("Secret", name) }
                return nil
            }
        }

        var mounts: [[String: Any]] { (body["volumeMounts"] as? [Any] ?? []).compactMap { $0 as? [String: Any] } }

        /// A probe's or Service's port, by number or by the name of a container port.
        func resolvePort(_ port: Any?) -> Int? {
            if let number = port as? Int { return number }
            guard let name = port as? String else { return nil }
            if let number = Int(name) { return number }
            let ports = (body["ports"] as? [Any] ?? []).compactMap { $0 as? [String: Any] }
            return ports.first { $0["name"] as? String == name }?["containerPort"] as? Int
        }
    }
}
